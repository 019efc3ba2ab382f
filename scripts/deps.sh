#!/usr/bin/env bash
# deps.sh: make this machine ready for tsys-ci's builds, tests and lab.
#
# Idempotent: installs only the Debian packages that are missing and starts only
# the daemons that are not running. There is no systemd on these machines, so
# daemons are started by hand with their logs under /var/log/tsys-ci/.
#
# Usage: scripts/deps.sh [--no-docker]
set -euo pipefail

want_docker=1
for arg in "$@"; do
	case "$arg" in
	--no-docker) want_docker=0 ;;
	*) echo "deps.sh: unknown argument $arg (known: --no-docker)" >&2; exit 2 ;;
	esac
done

log() { printf '[deps %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Packages the tests and the lab use, with why:
#   docker.io            the lab's nodes are containers
#   haproxy              the edge tests run a real HAProxy
#   slapd ldap-utils     LDAP tests run a real OpenLDAP (what UCS is built on)
#   groovy default-jre-headless  the Jenkins shared library's steps are executed by Groovy 2.4
#   glusterfs-server glusterfs-client  the lab's replicated storage
#   debootstrap          the lab's node image
#   gcc libc6-dev        the lab's sandbox (pause) image: a static C binary
#   iptables conntrack iproute2 curl ca-certificates  networking and probes
#   chromium             the whiteboard's browser test drives headless Chromium (chromedp)
#   jenkins-job-builder  renders the seeded jobs independently of tsys-ci (jenkins-jobs test), to
#                        check the job XML tsys-ci jenkins seed writes (templates/jenkins/jjb_test.go)
#   python3-aiosmtpd     a real SMTP server for the e-mail notification tests (pipeline/notify)
#   prometheus           a real Prometheus for promote's analysis.prometheus tests (test/prometheus)
#   for make lint: shellcheck, which checks scripts/*.sh
packages=(
	docker.io haproxy slapd ldap-utils groovy default-jre-headless
	glusterfs-server glusterfs-client debootstrap gcc libc6-dev
	iptables conntrack iproute2 curl ca-certificates chromium
	jenkins-job-builder python3-aiosmtpd prometheus
	shellcheck
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	# No daemon may start from a package's install script: there is no init
	# system here, and the tests start their own instances with their own config.
	policy=/usr/sbin/policy-rc.d
	had_policy=0
	[[ -e $policy ]] && had_policy=1
	if ((!had_policy)); then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/tsys-ci-apt.log 2>&1; then
		log "apt-get install failed; updating the package index and trying once more"
		apt-get update -q >>/tmp/tsys-ci-apt.log 2>&1
		apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/tsys-ci-apt.log 2>&1 || {
			((had_policy)) || rm -f "$policy"
			echo "deps.sh: apt-get install of ${missing[*]} failed; see /tmp/tsys-ci-apt.log" >&2
			exit 1
		}
	fi
	((had_policy)) || rm -f "$policy"
	# Package scripts may still have started a daemon on a system with a
	# working invoke-rc.d; the tests need the default ports free.
	pkill -x slapd 2>/dev/null || true
else
	log "packages present"
fi

if ((want_docker)); then
	mkdir -p /var/log/tsys-ci
	if ! docker version >/dev/null 2>&1; then
		log "starting dockerd (log: /var/log/tsys-ci/dockerd.log)"
		# Debian's dockerd, not whatever docker client is first on PATH.
		nohup /usr/sbin/dockerd >>/var/log/tsys-ci/dockerd.log 2>&1 &
		for _ in $(seq 1 60); do
			docker version >/dev/null 2>&1 && break
			sleep 1
		done
		docker version >/dev/null 2>&1 || {
			echo "deps.sh: dockerd did not answer within 60 s; see /var/log/tsys-ci/dockerd.log" >&2
			exit 1
		}
	fi
	log "docker engine $(docker version -f '{{.Server.Version}}')"
fi
