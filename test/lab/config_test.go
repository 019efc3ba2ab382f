package lab

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

func TestParseMirror(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.example/debian-security\n", "http://deb.example/debian"},
		{"Types: deb\nURIs: http://security.example/debian-security http://m.example/debian\n", "http://m.example/debian"},
		{"# comment\ndeb http://security.debian.org/ bookworm-security main\ndeb http://ftp.example/debian bookworm main\n", "http://ftp.example/debian"},
		{"deb [arch=amd64] http://x/ bookworm main\n", ""}, // options are not parsed: no guess
		{"", ""},
	} {
		if got := parseMirror(c.in); got != c.want {
			t.Errorf("parseMirror(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzParseMirror(f *testing.F) {
	f.Add("Types: deb\nURIs: http://deb.example/debian\n")
	f.Add("deb http://ftp.example/debian bookworm main\n")
	f.Fuzz(func(t *testing.T, s string) {
		m := parseMirror(s)
		if m != "" && (!strings.Contains(m, "://") || strings.Contains(m, "security") || !strings.Contains(s, m)) {
			t.Fatalf("parseMirror(%q) = %q", s, m)
		}
	})
}

// The env file's arrays reach the node's programs exactly, whatever the
// flag values hold: bash reads them back as written.
func TestWriteArrayRoundTripsThroughBash(t *testing.T) {
	bash := testenv.LookPath(t, "bash")
	items := []string{"--a=b", "with space", `it's "quoted"`, "$HOME", "a\\b", "--x=1,2;3"}
	var b strings.Builder
	writeArray(&b, "ARGS", items)
	out, err := exec.Command(bash, "-c", b.String()+`printf '%s\n' "${ARGS[@]}"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); strings.Join(got, "|") != strings.Join(items, "|") {
		t.Fatalf("bash read %q, want %q", got, items)
	}
}

func TestHAProxyConfigNamesEveryAPIServer(t *testing.T) {
	cfg := string(haproxyConfig())
	for _, d := range dbNodes() {
		if !strings.Contains(cfg, "server "+d.Name+" "+d.IP+":6443") {
			t.Errorf("haproxy config lacks %s:\n%s", d.Name, cfg)
		}
	}
	if !strings.Contains(cfg, "on-marked-down shutdown-sessions") {
		t.Error("a failed API server's connections would linger")
	}
}
