package jenkins

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRenderEveryTemplate renders the example jobs file, which uses every
// job template, and checks each config is well-formed XML of the right
// type that names the credentials, library and steps it needs, and that
// every step it names exists in the shared library.
func TestRenderEveryTemplate(t *testing.T) {
	f := exampleJobsFile(t)
	items, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, it := range items {
		root, err := parseXML(it.Config)
		if err != nil {
			t.Fatalf("%s: %v\n%s", it.Name, err, it.Config)
		}
		if err := xml.Unmarshal(it.Config, new(struct{})); err != nil {
			t.Errorf("%s: encoding/xml refuses it: %v", it.Name, err)
		}
		wantRoot := map[string]string{KindFolder: classOfKind[KindFolder], KindMultibranch: classOfKind[KindMultibranch], KindPipeline: "flow-definition"}[it.Kind]
		if root.name != wantRoot {
			t.Errorf("%s: root <%s>, want <%s>", it.Name, root.name, wantRoot)
		}
		cfg := string(it.Config)
		used[it.Kind] = true
		switch it.Kind {
		case KindFolder:
			for _, want := range []string{"<name>tsys</name>", "<credentialsId>gitea-jenkins</credentialsId>", "<libraryPath>templates/jenkins/shared-library/</libraryPath>", "<remote>https://gitea.company.example/platform/tsys-ci.git</remote>"} {
				if !strings.Contains(cfg, want) {
					t.Errorf("folder %s does not register the library with %s:\n%s", it.Name, want, cfg)
				}
			}
		case KindMultibranch:
			for _, want := range []string{`<source class="org.jenkinsci.plugin.gitea.GiteaSCMSource">`, "<serverUrl>https://gitea.company.example</serverUrl>", "<repoOwner>web</repoOwner>", "<credentialsId>gitea-jenkins</credentialsId>", "<scriptPath>Jenkinsfile</scriptPath>"} {
				if !strings.Contains(cfg, want) {
					t.Errorf("multibranch %s lacks %s:\n%s", it.Name, want, cfg)
				}
			}
		case KindPipeline:
			if !strings.Contains(cfg, "<sandbox>true</sandbox>") || !strings.Contains(cfg, "<name>IMAGE</name>") {
				t.Errorf("pipeline %s:\n%s", it.Name, cfg)
			}
			checkStepsExist(t, it.Name, nodeText(root, "definition", "script"))
			if !strings.Contains(nodeText(root, "definition", "script"), "@Library('tsys')") {
				t.Errorf("pipeline %s does not load the library it is seeded with", it.Name)
			}
		}
	}
	for _, k := range []string{KindFolder, KindMultibranch, KindPipeline} {
		if !used[k] {
			t.Errorf("templates/jenkins/jobs.yaml uses no %s: that template goes untested", k)
		}
	}

	// The git form of the pipeline template, and values that need escaping.
	g, err := ParseJobsFile([]byte(`jobs: [{name: "x-y", type: pipeline, description: "a <b> & 'c'", git: {remote: "https://g/r.git?a=1&b=2", credentialsId: gc}}]`))
	if err != nil {
		t.Fatal(err)
	}
	gi, err := g.Render()
	if err != nil {
		t.Fatal(err)
	}
	root, err := parseXML(gi[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeText(root, "definition", "scm", "userRemoteConfigs", "hudson.plugins.git.UserRemoteConfig", "url"); got != "https://g/r.git?a=1&b=2" {
		t.Errorf("escaped remote reads back as %q", got)
	}
	if got := nodeText(root, "definition", "scm", "userRemoteConfigs", "hudson.plugins.git.UserRemoteConfig", "credentialsId"); got != "gc" {
		t.Errorf("git credentials = %q", got)
	}
	if !strings.HasPrefix(nodeText(root, "description"), "a <b> & 'c'") {
		t.Errorf("description = %q", nodeText(root, "description"))
	}
}

// TestJenkinsfileUsesLibrarySteps checks the app Jenkinsfile loads the
// library by the name the example seeds and calls only steps it has.
func TestJenkinsfileUsesLibrarySteps(t *testing.T) {
	data, err := os.ReadFile("../templates/jenkins/Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "@Library('"+exampleJobsFile(t).Library.Name+"') _") {
		t.Errorf("the Jenkinsfile does not load the library jobs.yaml registers")
	}
	n := checkStepsExist(t, "Jenkinsfile", string(data))
	if n < 3 {
		t.Errorf("the Jenkinsfile calls %d tsys steps, want build, push and promote", n)
	}
}

var stepCall = regexp.MustCompile(`\b(tsys[A-Z]\w*)\b`)

func checkStepsExist(t *testing.T, where, script string) int {
	t.Helper()
	steps := map[string]bool{}
	for _, m := range stepCall.FindAllStringSubmatch(script, -1) {
		steps[m[1]] = true
	}
	for s := range steps {
		for _, ext := range []string{".groovy", ".txt"} {
			if _, err := os.Stat(filepath.Join("../templates/jenkins/shared-library/vars", s+ext)); err != nil {
				t.Errorf("%s calls %s, but the shared library has no vars/%s%s", where, s, s, ext)
			}
		}
	}
	return len(steps)
}

func nodeText(n *node, path ...string) string {
	for _, p := range path {
		n = nthChild(n, p, 0)
		if n == nil {
			return ""
		}
	}
	return n.text
}
