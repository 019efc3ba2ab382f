package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadBuildResult: a build result is a file in a Jenkins workspace; any
// content gives a result with a digest and a layout, or an error.
func FuzzReadBuildResult(f *testing.F) {
	f.Add([]byte(`{"digest":"sha256:ab","layout":".tsys-ci/image","labels":{"a":"b"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "build.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := ReadBuildResult(p)
		if err == nil && (r.Digest == "" || r.Layout == "") {
			t.Fatalf("accepted a result without digest or layout: %+v", r)
		}
	})
}

func FuzzFromEnv(f *testing.F) {
	f.Add("1700000000", "origin/main")
	f.Add("-1", "")
	f.Fuzz(func(t *testing.T, epoch, branch string) {
		c, err := FromEnv(func(k string) string {
			switch k {
			case "SOURCE_DATE_EPOCH":
				return epoch
			case "GIT_BRANCH":
				return branch
			}
			return ""
		})
		if err == nil && strings.TrimSpace(epoch) != "" && c.Created.Before(Epoch) {
			t.Fatalf("SOURCE_DATE_EPOCH=%q gave a time before 1970: %v", epoch, c.Created)
		}
	})
}
