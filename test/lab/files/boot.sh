#!/bin/bash
# boot.sh: what a lab node runs at boot (under tini, PID 1 of the node
# container). Written by test/lab into .lab/common/ and mounted read-only.
#
# Everything node-specific (addresses, routes, each program's flags) comes
# from /lab/node/env, which test/lab generates; this script only does the
# steps every node needs, in order, and keeps the programs running. Logs:
# /lab/log/<program>.log inside, .lab/logs/<node>/ on the host.
set -u
# shellcheck source=/dev/null
. /lab/node/env
LOG=/lab/log
PATH=/opt/k8s/bin:$PATH

log() { echo "[boot $(date +%T)] $*" >>"$LOG/boot.log"; }
die() {
	log "FATAL: $*"
	exit 1
}

log "booting $NODE ($ROLE, $NODE_IP)"

# The kubelet writes host-wide sysctls (they are not namespaced). Bind-mount
# files over them so the lab never changes the machine it runs on.
mkdir -p /run/lab-sysctl
for f in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
	[ -e "/proc/sys/$f" ] || continue
	copy=/run/lab-sysctl/${f//\//.}
	cat "/proc/sys/$f" >"$copy"
	mount --bind "$copy" "/proc/sys/$f" || die "cannot shield /proc/sys/$f"
done

# The node's own cgroup root in every v1 controller: several kubelets share
# the host's cgroup tree and would otherwise kill each other's pods.
for c in /sys/fs/cgroup/*/; do
	case $c in */unified/) continue ;; esac
	mkdir -p "$c${CGROUP_ROOT#/}" || die "cannot create $c${CGROUP_ROOT#/}"
done
cs=/sys/fs/cgroup/cpuset
if [ -d "$cs" ]; then
	cat "$cs/cpuset.cpus" >"$cs${CGROUP_ROOT}/cpuset.cpus"
	cat "$cs/cpuset.mems" >"$cs${CGROUP_ROOT}/cpuset.mems"
fi

# The kubelet wants a machine id; it lives in the writable layer, so it is
# stable across a restart of the node container.
[ -s /etc/machine-id ] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >/etc/machine-id

# State a killed node leaves behind: containerd's sockets and the CNI address
# records (both on tmpfs, cleared again in case /run survived).
rm -rf /run/containerd /var/lib/cni/networks

/lab/common/routes.sh || die "routes failed"

declare -a PIDS=()
supervise() {
	local name=$1
	shift
	(
		trap 'kill $child 2>/dev/null; exit 0' TERM INT
		while :; do
			"$@" >>"$LOG/$name.log" 2>&1 &
			child=$!
			wait $child
			log "$name exited with $?; restarting in 2 s"
			sleep 2
		done
	) &
	PIDS+=($!)
}
trap 'log "stopping"; kill "${PIDS[@]}" 2>/dev/null; wait; exit 0' TERM INT

supervise containerd containerd --config /lab/node/containerd.toml
for _ in $(seq 1 150); do
	ctr version >/dev/null 2>&1 && break
	sleep 0.2
done
ctr version >/dev/null 2>&1 || die "containerd did not answer within 30 s; see $LOG/containerd.log"
log "containerd up"

# Images every node needs (the sandbox image, and whatever test/lab's
# ImportImage added); the content store is on a volume, so this is quick
# when they are already there.
for t in /lab/images/*.tar; do
	[ -e "$t" ] || continue
	ctr -n k8s.io images import --no-unpack=false "$t" >>"$LOG/images.log" 2>&1 || log "importing $t failed; see $LOG/images.log"
done
log "images imported"

if [ "$ROLE" = db ]; then
	supervise etcd etcd "${ETCD_ARGS[@]}"
	supervise kube-apiserver kube-apiserver "${APISERVER_ARGS[@]}"
	supervise kube-controller-manager kube-controller-manager "${CONTROLLER_MANAGER_ARGS[@]}"
	supervise kube-scheduler kube-scheduler "${SCHEDULER_ARGS[@]}"
fi
# Boot hooks the add-ons leave in the node (e.g. test/addons' GlusterFS
# mount): run before the kubelet, so no pod starts on a volume whose mount is
# missing. A failing hook is logged and the node boots on.
for h in /etc/tsys-lab/*-boot.sh; do
	[ -x "$h" ] || continue
	log "running boot hook $h"
	if "$h" >>"$LOG/boot-hooks.log" 2>&1; then
		log "boot hook $h done"
	else
		log "boot hook $h failed ($?); see $LOG/boot-hooks.log"
	fi
done

supervise kubelet kubelet "${KUBELET_ARGS[@]}"
supervise kube-proxy kube-proxy "${PROXY_ARGS[@]}"
log "started"
touch /run/lab-booted
wait
