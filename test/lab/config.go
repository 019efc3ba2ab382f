package lab

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/tsys-group/tsys-ci/test/pki"
)

//go:embed files/boot.sh
var bootScript []byte

//go:embed files/routes.sh
var routesScript []byte

// Node-failure timings (reasoning in docs/lab.md). A dead node is noticed
// after NodeMonitorGracePeriod; its pods are evicted TolerationSeconds later.
const (
	NodeMonitorGracePeriod  = "16s"
	NodeMonitorPeriod       = "2s"
	NodeLeaseDurationSecs   = 10
	NodeStatusUpdateFreq    = "4s"
	DefaultTolerationSecs   = 15
	etcdHeartbeatMillis     = 250
	etcdElectionTimeoutMSec = 2500
)

// writeConfig makes the lab's keys (once) and every node's configuration
// under the state folder. Keys are kept across runs so a kubeconfig stays
// valid while the lab is up; the rest is rewritten each time.
func (l *Lab) writeConfig() error {
	pkiDir := filepath.Join(l.state, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return err
	}
	ca, err := loadOrMakeCA(pkiDir)
	if err != nil {
		return err
	}
	saKey := filepath.Join(pkiDir, "sa.key")
	if _, err := os.Stat(saKey); err != nil {
		priv, pub, err := pki.ServiceAccountKey()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(pkiDir, "sa.pub"), pub, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(saKey, priv, 0o600); err != nil {
			return err
		}
	}
	common := filepath.Join(l.state, "common")
	if err := os.MkdirAll(common, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"boot.sh": bootScript, "routes.sh": routesScript} {
		if err := writeIfChanged(filepath.Join(common, name), data, 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"sa.key", "sa.pub"} {
		b, err := os.ReadFile(filepath.Join(pkiDir, f))
		if err != nil {
			return err
		}
		if err := writeIfChanged(filepath.Join(common, f), b, 0o644); err != nil {
			return err
		}
	}
	if err := writeIfChanged(filepath.Join(common, "ca.crt"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(common, "ca.key"), ca.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(common, "resolv.conf"), podResolvConf(), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l.state, "containerd-certs.d"), 0o755); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(l.state, "haproxy.cfg"), haproxyConfig(), 0o644); err != nil {
		return err
	}

	apiURL := fmt.Sprintf("https://%s:%d", APIAddress, APIPort)
	if _, err := os.Stat(l.Kubeconfig()); err != nil {
		admin, err := ca.Issue(pki.Request{CommonName: "lab-admin", Organizations: []string{"system:masters"}, Client: true})
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.Kubeconfig(), kubeconfig(apiURL, ca.CertPEM, admin), 0o600); err != nil {
			return err
		}
	}
	for _, n := range Nodes {
		if err := l.writeNodeConfig(ca, n, apiURL); err != nil {
			return fmt.Errorf("configuring %s: %w", n.Name, err)
		}
	}
	return nil
}

func loadOrMakeCA(dir string) (*pki.CA, error) {
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, err := os.Stat(keyPath); err == nil {
		return pki.LoadCA(certPath, keyPath)
	}
	ca, err := pki.NewCA("tsys-ci lab CA")
	if err != nil {
		return nil, err
	}
	if _, _, err := pki.WriteFiles(dir, "ca", ca.CertPEM, ca.KeyPEM); err != nil {
		return nil, err
	}
	return ca, nil
}

func (l *Lab) writeNodeConfig(ca *pki.CA, n Node, apiURL string) error {
	dir := filepath.Join(l.state, "nodes", n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l.LogDir(), n.Name), 0o755); err != nil {
		return err
	}
	// Keys are made once and kept: a running lab keeps working while Up
	// rewrites the rest.
	exists := func(file string) bool {
		_, err := os.Stat(filepath.Join(dir, file))
		return err == nil
	}
	issue := func(file string, r pki.Request) error {
		if exists(file + ".crt") {
			return nil
		}
		p, err := ca.Issue(r)
		if err != nil {
			return err
		}
		_, _, err = pki.WriteFiles(dir, file, p.CertPEM, p.KeyPEM)
		return err
	}
	kc := func(file, cn string, orgs []string, server string) error {
		if exists(file) {
			return nil
		}
		p, err := ca.Issue(pki.Request{CommonName: cn, Organizations: orgs, Client: true})
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, file), kubeconfig(server, ca.CertPEM, p), 0o600)
	}
	ip := net.ParseIP(n.IP)
	// The kubelet's serving certificate, for the API server's logs and exec.
	if err := issue("kubelet-serving", pki.Request{CommonName: n.Name, DNSNames: []string{n.Name}, IPs: []net.IP{ip}, Server: true}); err != nil {
		return err
	}
	if err := kc("kubelet.kubeconfig", "system:node:"+n.Name, []string{"system:nodes"}, apiURL); err != nil {
		return err
	}
	if err := kc("kube-proxy.kubeconfig", "system:kube-proxy", nil, apiURL); err != nil {
		return err
	}
	var env strings.Builder
	fmt.Fprintf(&env, "# generated by test/lab; sourced by /lab/common/boot.sh\n")
	fmt.Fprintf(&env, "NODE=%s\nROLE=%s\nNODE_IP=%s\nCGROUP_ROOT=%s\nCLUSTER_CIDR=%s\n", n.Name, n.Role, n.IP, n.CgroupRoot(), ClusterCIDR)
	var routes []string
	for _, o := range Nodes {
		if o.Name != n.Name {
			routes = append(routes, o.PodCIDR+" via "+o.IP)
		}
	}
	writeArray(&env, "ROUTES", routes)

	if n.Role == "db" {
		// Control-plane components talk to their own node's API server:
		// it dies with them, as on a k3s server.
		local := fmt.Sprintf("https://127.0.0.1:%d", APIPort)
		sans := []string{"localhost", n.Name, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
		ips := []net.IP{ip, net.ParseIP(APIAddress), net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)}
		if err := issue("apiserver", pki.Request{CommonName: "kube-apiserver", DNSNames: sans, IPs: ips, Server: true}); err != nil {
			return err
		}
		if err := issue("apiserver-kubelet-client", pki.Request{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}, Client: true}); err != nil {
			return err
		}
		// The aggregation layer's front proxy (aggregated APIs such as
		// metrics-server trust these headers from this client only).
		if err := issue("front-proxy-client", pki.Request{CommonName: "front-proxy-client", Client: true}); err != nil {
			return err
		}
		if err := kc("controller-manager.kubeconfig", "system:kube-controller-manager", nil, local); err != nil {
			return err
		}
		if err := kc("scheduler.kubeconfig", "system:kube-scheduler", nil, local); err != nil {
			return err
		}
		var cluster []string
		for _, d := range dbNodes() {
			cluster = append(cluster, fmt.Sprintf("%s=http://%s:2380", d.Name, d.IP))
		}
		writeArray(&env, "ETCD_ARGS", []string{
			"--name=" + n.Name,
			"--data-dir=/var/lib/etcd",
			"--listen-client-urls=http://0.0.0.0:2379",
			"--advertise-client-urls=http://" + n.IP + ":2379",
			"--listen-peer-urls=http://0.0.0.0:2380",
			"--initial-advertise-peer-urls=http://" + n.IP + ":2380",
			"--initial-cluster=" + strings.Join(cluster, ","),
			"--initial-cluster-state=new",
			"--initial-cluster-token=tsys-lab",
			// 2 shared cores: the defaults (100 ms, 1 s) make a busy machine
			// look like a dead leader.
			fmt.Sprintf("--heartbeat-interval=%d", etcdHeartbeatMillis),
			fmt.Sprintf("--election-timeout=%d", etcdElectionTimeoutMSec),
			"--log-level=warn",
		})
		// Only the node's own etcd member, as k3s and kubeadm's stacked etcd
		// do: etcd's client spreads requests over every endpoint it is
		// given, and requests sent to a frozen member hang until its
		// keepalive gives up (~40 s). A node whose member is down has no
		// ready API server, and the load balancer stops sending it work.
		writeArray(&env, "APISERVER_ARGS", []string{
			"--advertise-address=" + n.IP,
			"--bind-address=0.0.0.0",
			fmt.Sprintf("--secure-port=%d", APIPort),
			"--etcd-servers=http://127.0.0.1:2379",
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--client-ca-file=/lab/common/ca.crt",
			"--tls-cert-file=/lab/node/apiserver.crt",
			"--tls-private-key-file=/lab/node/apiserver.key",
			"--kubelet-client-certificate=/lab/node/apiserver-kubelet-client.crt",
			"--kubelet-client-key=/lab/node/apiserver-kubelet-client.key",
			"--kubelet-certificate-authority=/lab/common/ca.crt",
			"--kubelet-preferred-address-types=InternalIP",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=/lab/common/sa.pub",
			"--service-account-signing-key-file=/lab/common/sa.key",
			fmt.Sprintf("--default-not-ready-toleration-seconds=%d", DefaultTolerationSecs),
			fmt.Sprintf("--default-unreachable-toleration-seconds=%d", DefaultTolerationSecs),
			// Webhooks and aggregated APIs are reached at their pods'
			// addresses (the nodes route to every pod network).
			"--enable-aggregator-routing=true",
			"--requestheader-client-ca-file=/lab/common/ca.crt",
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=/lab/node/front-proxy-client.crt",
			"--proxy-client-key-file=/lab/node/front-proxy-client.key",
			"--profiling=false",
		})
		writeArray(&env, "CONTROLLER_MANAGER_ARGS", []string{
			"--kubeconfig=/lab/node/controller-manager.kubeconfig",
			"--authentication-kubeconfig=/lab/node/controller-manager.kubeconfig",
			"--authorization-kubeconfig=/lab/node/controller-manager.kubeconfig",
			"--bind-address=127.0.0.1",
			"--leader-elect=true",
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=/lab/common/sa.key",
			"--root-ca-file=/lab/common/ca.crt",
			"--cluster-signing-cert-file=/lab/common/ca.crt",
			"--cluster-signing-key-file=/lab/common/ca.key",
			"--cluster-cidr=" + ClusterCIDR,
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--node-monitor-grace-period=" + NodeMonitorGracePeriod,
			"--node-monitor-period=" + NodeMonitorPeriod,
			"--profiling=false",
		})
		writeArray(&env, "SCHEDULER_ARGS", []string{
			"--kubeconfig=/lab/node/scheduler.kubeconfig",
			"--authentication-kubeconfig=/lab/node/scheduler.kubeconfig",
			"--authorization-kubeconfig=/lab/node/scheduler.kubeconfig",
			"--bind-address=127.0.0.1",
			"--leader-elect=true",
			"--profiling=false",
		})
	}

	kubeletArgs := []string{
		"--config=/lab/node/kubelet.yaml",
		"--kubeconfig=/lab/node/kubelet.kubeconfig",
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
		"--node-labels=tsys-ci.io/lab-role=" + n.Role,
	}
	if n.Role == "db" {
		kubeletArgs = append(kubeletArgs, "--register-with-taints=node-role.kubernetes.io/control-plane=:NoSchedule")
	}
	writeArray(&env, "KUBELET_ARGS", kubeletArgs)
	writeArray(&env, "PROXY_ARGS", []string{"--config=/lab/node/kube-proxy.yaml"})

	files := map[string]string{
		"env":                 env.String(),
		"kubelet.yaml":        kubeletConfig(n),
		"kube-proxy.yaml":     proxyConfig(n),
		"containerd.toml":     containerdConfig(),
		"cni/10-lab.conflist": cniConfig(n),
	}
	if err := os.MkdirAll(filepath.Join(dir, "cni"), 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := writeIfChanged(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeArray writes a bash array assignment with every element quoted.
func writeArray(b *strings.Builder, name string, items []string) {
	fmt.Fprintf(b, "%s=(\n", name)
	for _, it := range items {
		fmt.Fprintf(b, "\t'%s'\n", strings.ReplaceAll(it, "'", `'\''`))
	}
	b.WriteString(")\n")
}

func kubeletConfig(n Node) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts: allowed again, with the cgroupfs driver and the node's own
# cgroup root (several kubelets share the host's cgroup tree).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %s
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /lab/common/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: /lab/node/kubelet-serving.crt
tlsPrivateKeyFile: /lab/node/kubelet-serving.key
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: /lab/common/resolv.conf
# Node-failure timings: docs/lab.md.
nodeLeaseDurationSeconds: %d
nodeStatusUpdateFrequency: %s
serializeImagePulls: false
# The host's disk is shared with everything else on it: do not evict pods
# for disk pressure the lab did not cause.
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
imageGCHighThresholdPercent: 100
`, n.CgroupRoot(), ClusterDNS, NodeLeaseDurationSecs, NodeStatusUpdateFreq)
}

func proxyConfig(n Node) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: /lab/node/kube-proxy.kubeconfig
hostnameOverride: %s
clusterCIDR: %s
metricsBindAddress: 127.0.0.1:10249
# Conntrack sizes and timeouts are host-wide: leave the host's values alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, n.Name, ClusterCIDR)
}

func containerdConfig() string {
	return fmt.Sprintf(`# containerd of a lab node (containerd 1.6 from Debian).
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # Without CAP_SYS_RESOURCE a pod sandbox cannot lower its OOM score
  # below the node's; without this every sandbox fails.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/lab/node/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    # Registry hosts (hosts.toml per registry), written by the add-ons into
    # the lab's containerd-certs.d folder.
    config_path = "/etc/containerd/certs.d"
`, PauseImage())
}

func cniConfig(n Node) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "lab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.PodCIDR)
}

// podResolvConf is the resolver of pods with dnsPolicy Default (CoreDNS
// forwards to it): the host's own name servers, since the node's
// /etc/resolv.conf names Docker's 127.0.0.11, which pods cannot reach.
func podResolvConf() []byte {
	var b strings.Builder
	b.WriteString("# the host's name servers (test/lab)\n")
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "nameserver" && !strings.HasPrefix(f[1], "127.") {
				b.WriteString(line + "\n")
			}
		}
	}
	return []byte(b.String())
}

func haproxyConfig() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# lab-apilb: the stable API address over the three API servers.
global
  log stdout format raw local0 info
  maxconn 4096
defaults
  mode tcp
  log global
  option tcplog
  timeout connect 3s
  timeout check 2s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend api
  bind *:%d
  default_backend apiservers
backend apiservers
  balance roundrobin
  # /readyz over TLS, anonymous (allowed by RBAC's bootstrap roles). A
  # server that fails it is taken out after 2 s and its connections are
  # cut, so clients reconnect to a live one at once instead of waiting on
  # a frozen peer.
  option httpchk GET /readyz
  http-check expect status 200
  default-server check check-ssl verify none inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
`, APIPort)
	for _, d := range dbNodes() {
		fmt.Fprintf(&b, "  server %s %s:%d\n", d.Name, d.IP, APIPort)
	}
	return []byte(b.String())
}

func kubeconfig(server string, caPEM []byte, p pki.Pair) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: tsys-lab
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: user
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: tsys-lab
  context: {cluster: tsys-lab, user: user}
current-context: tsys-lab
`, server, b64(caPEM), b64(p.CertPEM), b64(p.KeyPEM))
}

// writeIfChanged leaves a file alone when it already holds data: programs
// in running nodes watch their files (kube-proxy exits when its
// configuration file is written, even with the same bytes).
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(path, data, mode)
}
