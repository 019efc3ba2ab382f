package registry

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Flags come from Jenkinsfiles and people: the parsers must never panic and
// must only accept what they promise.

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80", "8080/tcp", "53/udp", "0", "65536", "http", "80/sctp", "/", "-1/tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePort(s)
		if err != nil {
			return
		}
		num, proto, ok := strings.Cut(k, "/")
		n, perr := strconv.Atoi(num)
		if !ok || perr != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp") {
			t.Fatalf("ParsePort(%q) = %q, which is not N/tcp or N/udp", s, k)
		}
	})
}

func FuzzParseTags(f *testing.F) {
	for _, s := range []string{"v1", "build-12", "0123456", "-x", ".x", "a:b", "", strings.Repeat("a", 129)} {
		f.Add(s)
	}
	repo, _ := ParseRepository("registry.example.com/demo/app")
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := ParseTags(repo, []string{s})
		if err != nil {
			return
		}
		if len(tags) != 1 || tags[0].TagStr() != s || !tagPattern.MatchString(s) {
			t.Fatalf("ParseTags accepted %q as %v", s, tags)
		}
	})
}

// FuzzEmbeddedJournal: whatever is in the journal file, opening the
// registry answers with a registry or an error, never a panic.
func FuzzEmbeddedJournal(f *testing.F) {
	f.Add([]byte(`{"op":"put","repo":"a/b","ref":"v1","mediaType":"application/vnd.oci.image.manifest.v1+json","body":"e30="}` + "\n"))
	f.Add([]byte(`{"op":"delete","repo":"a","ref":"v1"}` + "\n"))
	f.Add([]byte("garbage\n"))
	f.Fuzz(func(t *testing.T, journal []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "manifests.jsonl"), journal, 0o644); err != nil {
			t.Fatal(err)
		}
		if e, err := OpenEmbedded(dir, nil); err == nil {
			e.Close()
		}
	})
}
