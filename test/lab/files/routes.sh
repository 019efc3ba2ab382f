#!/bin/bash
# routes.sh: a lab node's routes to the other nodes' pod networks, and the
# masquerade of pod traffic that leaves the pod network. Run at boot and
# again after the node is reconnected to the lab network (a disconnect
# removes eth0 and every route through it).
set -eu
# shellcheck source=/dev/null
. /lab/node/env
for r in "${ROUTES[@]}"; do
	# shellcheck disable=SC2086
	ip route replace $r
done
iptables -t nat -C POSTROUTING -s "$CLUSTER_CIDR" ! -d "$CLUSTER_CIDR" -j MASQUERADE 2>/dev/null ||
	iptables -t nat -A POSTROUTING -s "$CLUSTER_CIDR" ! -d "$CLUSTER_CIDR" -j MASQUERADE
