package jenkins

import (
	"strings"
	"testing"
)

func TestParseJobsFileDefaults(t *testing.T) {
	f, err := ParseJobsFile([]byte(`
library: {remote: https://git.example/tsys-ci.git}
folders: [{name: apps, library: true}]
jobs:
  - {name: apps/web, type: multibranch, gitea: {server: https://gitea.example, owner: o, repository: web}}
  - {name: apps/job, type: pipeline, git: {remote: https://git.example/x.git}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if l := f.Library; l.Name != "tsys" || l.DefaultVersion != "main" || l.Path != DefaultLibraryPath {
		t.Errorf("library defaults = %+v", l)
	}
	if f.Jobs[0].ScriptPath != "Jenkinsfile" || f.Jobs[1].Git.Branch != "main" {
		t.Errorf("job defaults = %+v / %+v", f.Jobs[0], f.Jobs[1].Git)
	}
}

func TestParseJobsFileErrors(t *testing.T) {
	mb := `{name: apps/web, type: multibranch, gitea: {server: https://gitea.example, owner: o, repository: web}}`
	for _, tc := range []struct{ yaml, want string }{
		{`jobs: [{name: web, type: pipeline, script: x, colour: red}]`, `unknown field "colour"`},
		{`jobs: [` + mb + `]`, "its folder apps is not declared"},
		{`folders: [{name: apps}, {name: Apps}]`, "Jenkins item names ignore case"},
		{`folders: [{name: apps, library: true}]`, "needs a library: section"},
		{`folders: [{name: "a:b"}]`, "unsafe character"},
		{`folders: [{name: "a."}]`, "ends with '.'"},
		{`folders: [{name: "a//b"}]`, "empty segment"},
		{`jobs: [{name: web, type: freestyle}]`, `type "freestyle" is unknown`},
		{`jobs: [{name: web}]`, "type is required"},
		{`jobs: [{name: web, type: pipeline}]`, "exactly one of git"},
		{`jobs: [{name: web, type: pipeline, script: x, git: {remote: r}}]`, "exactly one of git"},
		{`jobs: [{name: web, type: multibranch, gitea: {server: "gitea.example", owner: o, repository: r}}]`, "not an http(s) URL"},
		{`jobs: [{name: web, type: multibranch}]`, "needs gitea"},
		{`jobs: [{name: web, type: pipeline, script: x, parameters: [{name: A}, {name: A}]}]`, "declared twice"},
		{`library: {remote: r, path: "../x"}`, "may not contain '..'"},
		{`jobs: [oops`, "reading jobs file"},
	} {
		_, err := ParseJobsFile([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseJobsFile(%s) = %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

// FuzzParseJobsFile: any input is refused with an error or accepted, and
// what is accepted renders to well-formed job XML, parents first.
func FuzzParseJobsFile(f *testing.F) {
	f.Add([]byte(`library: {remote: https://g/x.git}
folders: [{name: apps, library: true, description: "<&>"}]
jobs: [{name: apps/w, type: multibranch, gitea: {server: "https://g", owner: "o&", repository: "r<"}},
       {name: p, type: pipeline, script: "echo '<x>' && ]]>", parameters: [{name: A, default: "\"q\""}]}]`))
	f.Add([]byte(`jobs: [{name: p, type: pipeline, git: {remote: r, credentialsId: "c"}}]`))
	f.Add([]byte("folders: [{name: \"a\x01\"}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		jf, err := ParseJobsFile(data)
		if err != nil {
			return
		}
		items, err := jf.Render()
		if err != nil {
			t.Fatalf("accepted jobs file does not render: %v\n%s", err, data)
		}
		seen := map[string]bool{}
		for _, it := range items {
			if _, err := parseXML(it.Config); err != nil {
				t.Fatalf("%s: malformed XML: %v", it.Name, err)
			}
			if parents, _ := split(it.Name); len(parents) > 0 && !seen[strings.ToLower(strings.Join(parents, "/"))] {
				t.Fatalf("%s rendered before its folder", it.Name)
			}
			seen[strings.ToLower(it.Name)] = true
		}
	})
}
