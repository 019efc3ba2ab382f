package jenkins

import (
	"strings"
	"testing"
)

func TestCompareConfig(t *testing.T) {
	want := `<flow-definition><description>d</description><definition class="x"><script>echo 1</script></definition><triggers/></flow-definition>`
	for _, tc := range []struct {
		have string
		same bool
	}{
		{want, true},
		{"<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition plugin=\"workflow-job@1\"><actions/><description>d</description><keepDependencies>false</keepDependencies><definition class=\"x\" plugin=\"p@2\"><script>echo 1</script><sandbox>true</sandbox></definition><triggers/></flow-definition>", true},
		{`<flow-definition><description>d</description><definition class="y"><script>echo 1</script></definition><triggers/></flow-definition>`, false},
		{`<flow-definition><description>d</description><definition class="x"><script>echo 2</script></definition><triggers/></flow-definition>`, false},
		{`<flow-definition><description>d</description><definition class="x"><script>echo 1</script></definition><triggers><t/></triggers></flow-definition>`, false},
		{`<flow-definition><description>d</description><triggers/></flow-definition>`, false},
	} {
		same, diff, err := compareConfig([]byte(tc.have), []byte(want))
		if err != nil || same != tc.same {
			t.Errorf("compareConfig(%s) = %v, %v, want %v\n%s", tc.have, same, err, tc.same, diff)
		}
		if !same && !strings.ContainsAny(diff, "+-") {
			t.Errorf("a difference without a diff: %q", diff)
		}
	}
	if _, _, err := compareConfig([]byte("<html>403"), []byte(want)); err == nil {
		t.Error("an HTML error page compared as a config")
	}
}

// FuzzCompareConfig: Jenkins' config.xml is outside input; any bytes give
// an answer or an error, never a panic, and a config always covers itself.
func FuzzCompareConfig(f *testing.F) {
	f.Add([]byte(`<a x="1"><b>t</b><b/><c><d/></c></a>`), []byte(`<a><b>t</b></a>`))
	f.Add([]byte("<?xml version='1.1'?><a/>"), []byte(`<a/>`))
	f.Fuzz(func(t *testing.T, have, want []byte) {
		compareConfig(have, want)
		if _, err := parseXML(want); err == nil {
			if same, diff, err := compareConfig(want, want); err != nil || !same {
				t.Fatalf("%q does not cover itself: %v\n%s", want, err, diff)
			}
		}
	})
}
