package doctor

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kubernetesEndOfLife is the day upstream stopped (or stops) fixing each
// minor release of Kubernetes: after it a cluster gets no security fixes.
// Source: https://kubernetes.io/releases/ (each minor's page, "End Of Life
// Date") and https://kubernetes.io/releases/patch-releases/ (non-active
// branch history), read 2026-12-07. k3s follows upstream's support window
// (https://docs.k3s.io/release-notes). Update this table when a minor is
// released; a version newer than the table is reported as unknown, not as
// supported.
var kubernetesEndOfLife = map[int]string{
	19: "2021-10-28", 20: "2022-02-28", 21: "2022-06-28", 22: "2022-10-28",
	23: "2023-02-28", 24: "2023-07-28", 25: "2023-10-28", 26: "2024-02-28",
	27: "2024-06-28", 28: "2024-10-28", 29: "2025-02-28", 30: "2025-07-15",
	31: "2025-10-28", 32: "2026-02-28", 33: "2026-06-28", 34: "2026-10-27",
	35: "2027-02-28", 36: "2027-06-28",
}

// endOfLifeSource is cited in the findings, so a reader can check the date.
const endOfLifeSource = "source: kubernetes.io/releases, read 2026-12-07"

// minorOf reads the minor number of a kubelet version such as
// v1.20.4+k3s1 or v1.34.2.
func minorOf(version string) (int, bool) {
	v := strings.TrimPrefix(version, "v")
	major, rest, ok := strings.Cut(v, ".")
	if !ok || major != "1" {
		return 0, false
	}
	minor, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(minor)
	return n, err == nil
}

// versions reports kubelet versions out of upstream support and nodes whose
// versions differ. Now comes from Options so the same snapshot always gives
// the same findings.
func (a *analysis) versions() {
	byVersion := map[string][]string{}
	for i := range a.s.Nodes {
		n := &a.s.Nodes[i]
		v := n.Status.NodeInfo.KubeletVersion
		if v == "" {
			continue
		}
		byVersion[v] = append(byVersion[v], n.Name)
	}
	if len(byVersion) == 0 {
		return
	}
	for _, names := range byVersion {
		slices.Sort(names)
	}
	versions := slices.Sorted(maps.Keys(byVersion))
	if len(versions) > 1 {
		var parts []string
		for _, v := range versions {
			parts = append(parts, v+" on "+strings.Join(byVersion[v], ", "))
		}
		a.add(SeverityWarning, CheckVersions, "cluster", "nodes run different kubelet versions: "+strings.Join(parts, "; "),
			"an upgrade left half done: the older nodes miss the fixes of the newer ones, and Kubernetes supports a kubelet at most three minors behind the API server, so the next upgrade may strand them.",
			"Finish the upgrade: every server first, then every agent, to the same k3s version (platform.yaml's k3s.version; k3s's system-upgrade-controller or the install script with INSTALL_K3S_VERSION).")
	}
	now := a.opts.now()
	for _, v := range versions {
		a.supported("nodes "+strings.Join(byVersion[v], ", "), v, now)
	}
}

// supported reports one version out of upstream support (or unknown to
// the table); where says which nodes or which file carries it.
func (a *analysis) supported(where, version string, now time.Time) {
	minor, ok := minorOf(version)
	if !ok {
		a.add(SeverityWarning, CheckVersions, where, fmt.Sprintf("Kubernetes version %q cannot be read", version),
			"doctor cannot tell whether it still gets security fixes.",
			"Use a released Kubernetes or k3s version (vMAJOR.MINOR.PATCH, e.g. v1.35.3+k3s1).")
		return
	}
	eol, ok := kubernetesEndOfLife[minor]
	if !ok {
		if minor < slices.Min(slices.Collect(maps.Keys(kubernetesEndOfLife))) {
			eol = "before 2021"
		} else {
			a.add(SeverityInfo, CheckVersions, where, fmt.Sprintf("Kubernetes %s is newer than doctor's support table; %s", version, endOfLifeSource),
				"doctor cannot say when its support ends.",
				"Nothing to do on the cluster; update the table in platform/doctor/versions.go.")
			return
		}
	}
	day, err := time.Parse(time.DateOnly, eol)
	if err == nil && !now.After(day) {
		return
	}
	sev := SeverityCritical // older than the table: years out of support
	since := "since " + eol
	if err == nil {
		sev = SeverityWarning
		if years := now.Sub(day).Hours() / 24 / 365; years >= 1 {
			sev = SeverityCritical
			since = fmt.Sprintf("since %s (%.1f years)", eol, years)
		}
	}
	a.add(sev, CheckVersions, where, fmt.Sprintf("Kubernetes %s is out of upstream support %s; %s", version, since, endOfLifeSource),
		"an unsupported release gets no security or bug fixes: every vulnerability found since stays open, and an upgrade jumps more versions at once the longer it waits (Kubernetes upgrades one minor at a time).",
		"Upgrade k3s one minor at a time to a supported release (servers first, then agents; back up etcd first: k3s etcd-snapshot save), and pin it in platform.yaml's k3s.version.")
}
