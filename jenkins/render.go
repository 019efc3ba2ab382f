package jenkins

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"text/template"

	jenkinstemplates "github.com/tsys-group/tsys-ci/templates/jenkins"
)

// Item kinds, with the config.xml root element and the api/json _class
// Jenkins reports for each.
const (
	KindFolder      = "folder"
	KindMultibranch = TypeMultibranch
	KindPipeline    = TypePipeline
)

var classOfKind = map[string]string{
	KindFolder:      "com.cloudbees.hudson.plugins.folder.Folder",
	KindMultibranch: "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
	KindPipeline:    "org.jenkinsci.plugins.workflow.job.WorkflowJob",
}

// managedNote ends every description, so whoever opens the job in Jenkins
// learns where its configuration comes from.
const managedNote = "(Managed by tsys-ci jenkins seed from jobs.yaml: changes made in Jenkins are overwritten.)"

// Item is one folder or job with the config.xml seeding gives it.
type Item struct {
	Name   string // full name, "apps/whiteboard"
	Kind   string // KindFolder, KindMultibranch or KindPipeline
	Config []byte
}

var jobTemplates = template.Must(template.New("").Funcs(template.FuncMap{"x": escapeXML}).
	ParseFS(jenkinstemplates.Jobs, "jobs/*.xml.tmpl"))

func escapeXML(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Render turns the jobs file into items, parents before children, each with
// its config.xml rendered from templates/jenkins/jobs.
func (f *JobsFile) Render() ([]Item, error) {
	var items []Item
	for _, fo := range f.Folders {
		data := struct {
			Description string
			Library     *Library
		}{describe(fo.Description), nil}
		if fo.Library {
			data.Library = f.Library
		}
		cfg, err := render("folder.xml.tmpl", data)
		if err != nil {
			return nil, fmt.Errorf("rendering folder %s: %w", fo.Name, err)
		}
		items = append(items, Item{fo.Name, KindFolder, cfg})
	}
	for _, j := range f.Jobs {
		data := struct {
			Job
			SourceID string
		}{j, "tsys-ci-" + strings.ToLower(strings.ReplaceAll(j.Name, "/", "-"))}
		data.Description = describe(j.Description)
		name := "pipeline.xml.tmpl"
		if j.Type == TypeMultibranch {
			name = "multibranch.xml.tmpl"
		}
		cfg, err := render(name, data)
		if err != nil {
			return nil, fmt.Errorf("rendering job %s: %w", j.Name, err)
		}
		items = append(items, Item{j.Name, j.Type, cfg})
	}
	// Folders may be listed in any order; Jenkins needs parents first.
	sortParentsFirst(items)
	return items, nil
}

func describe(d string) string {
	if d = strings.TrimSpace(d); d == "" {
		return managedNote
	}
	return d + "\n" + managedNote
}

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := jobTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return nil, err
	}
	// A template that renders broken XML is a bug here, not in Jenkins.
	if _, err := parseXML(b.Bytes()); err != nil {
		return nil, fmt.Errorf("template %s rendered malformed XML: %w", name, err)
	}
	return b.Bytes(), nil
}

// sortParentsFirst orders items by depth, keeping the file's order within
// a depth.
func sortParentsFirst(items []Item) {
	slices.SortStableFunc(items, func(a, b Item) int {
		return strings.Count(a.Name, "/") - strings.Count(b.Name, "/")
	})
}
