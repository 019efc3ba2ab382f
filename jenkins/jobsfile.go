// Package jenkins seeds Jenkins folders and jobs from templates and follows
// builds, through gojenkins. The CLI (`tsys-ci jenkins seed`, `tsys-ci
// jenkins run`) is a thin layer over Seed and Run.
package jenkins

import (
	"fmt"
	"net/url"
	"strings"

	"sigs.k8s.io/yaml"
)

// Job types a jobs file can declare.
const (
	TypeMultibranch = "multibranch" // a Gitea repository, one job per branch and pull request
	TypePipeline    = "pipeline"    // one pipeline, inline or from a Jenkinsfile in git
)

// Defaults for the shared library when jobs.yaml leaves them out.
const (
	DefaultLibraryName    = "tsys"
	DefaultLibraryVersion = "main"
	DefaultLibraryPath    = "templates/jenkins/shared-library"
	DefaultScriptPath     = "Jenkinsfile"
)

// JobsFile is jobs.yaml: the folders and jobs Jenkins should have.
type JobsFile struct {
	// Library is the shared library (templates/jenkins/shared-library in
	// the tsys-ci repository) that folders with library: true register.
	Library *Library `json:"library,omitempty"`
	Folders []Folder `json:"folders,omitempty"`
	Jobs    []Job    `json:"jobs,omitempty"`
}

// Library is a Pipeline shared library fetched from git.
type Library struct {
	Name           string `json:"name,omitempty"`
	Remote         string `json:"remote"`
	CredentialsID  string `json:"credentialsId,omitempty"`
	DefaultVersion string `json:"defaultVersion,omitempty"`
	// Path is the library's folder inside the repository.
	Path string `json:"path,omitempty"`
}

// Folder is a Jenkins folder; Name is its full name ("apps" or "apps/web").
type Folder struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Library registers the shared library as a folder library, so every
	// job below can say @Library('tsys').
	Library bool `json:"library,omitempty"`
}

// Job is a multibranch project or a pipeline job; Name is its full name.
type Job struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	// Gitea is the repository of a multibranch project.
	Gitea *GiteaSource `json:"gitea,omitempty"`
	// Git is where a pipeline job's Jenkinsfile lives; Script is an inline
	// pipeline instead. A pipeline job has exactly one of them.
	Git        *GitSource  `json:"git,omitempty"`
	Script     string      `json:"script,omitempty"`
	ScriptPath string      `json:"scriptPath,omitempty"`
	Parameters []Parameter `json:"parameters,omitempty"`
}

// GiteaSource is a repository on a Gitea server (Gitea branch source plugin).
type GiteaSource struct {
	Server        string `json:"server"`
	Owner         string `json:"owner"`
	Repository    string `json:"repository"`
	CredentialsID string `json:"credentialsId,omitempty"`
}

// GitSource is a plain git repository and branch.
type GitSource struct {
	Remote        string `json:"remote"`
	Branch        string `json:"branch,omitempty"`
	CredentialsID string `json:"credentialsId,omitempty"`
}

// Parameter is a string build parameter.
type Parameter struct {
	Name        string `json:"name"`
	Default     string `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
}

// ParseJobsFile reads jobs.yaml strictly (unknown keys are errors, so a
// typo cannot silently drop a setting), fills in defaults and checks it.
func ParseJobsFile(data []byte) (*JobsFile, error) {
	var f JobsFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("reading jobs file: %w", err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *JobsFile) validate() error {
	if l := f.Library; l != nil {
		if l.Name == "" {
			l.Name = DefaultLibraryName
		}
		if l.DefaultVersion == "" {
			l.DefaultVersion = DefaultLibraryVersion
		}
		if l.Path == "" {
			l.Path = DefaultLibraryPath
		}
		l.Path = strings.Trim(l.Path, "/")
		if l.Remote == "" {
			return fmt.Errorf("library: remote is required (the git URL of the repository holding %s)", l.Path)
		}
		if strings.Contains("/"+l.Path+"/", "/../") {
			return fmt.Errorf("library: path %q may not contain '..' (Jenkins refuses it)", l.Path)
		}
	}
	seen := map[string]string{} // lower-case full name -> what declared it
	folders := map[string]bool{}
	for i := range f.Folders {
		fo := &f.Folders[i]
		what := fmt.Sprintf("folders[%d] (%s)", i, fo.Name)
		if err := checkItemName(fo.Name); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if fo.Library && f.Library == nil {
			return fmt.Errorf("%s: library: true needs a library: section saying where the shared library lives", what)
		}
		if err := declare(seen, fo.Name, what); err != nil {
			return err
		}
		folders[strings.ToLower(fo.Name)] = true
	}
	for i := range f.Folders {
		if err := checkParent(folders, f.Folders[i].Name, fmt.Sprintf("folders[%d] (%s)", i, f.Folders[i].Name)); err != nil {
			return err
		}
	}
	for i := range f.Jobs {
		j := &f.Jobs[i]
		what := fmt.Sprintf("jobs[%d] (%s)", i, j.Name)
		if err := checkItemName(j.Name); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := checkParent(folders, j.Name, what); err != nil {
			return err
		}
		if err := declare(seen, j.Name, what); err != nil {
			return err
		}
		if err := j.validate(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func (j *Job) validate() error {
	if j.ScriptPath == "" {
		j.ScriptPath = DefaultScriptPath
	}
	switch j.Type {
	case TypeMultibranch:
		g := j.Gitea
		if g == nil {
			return fmt.Errorf("a multibranch job needs gitea: {server, owner, repository}")
		}
		if j.Git != nil || j.Script != "" || len(j.Parameters) > 0 {
			return fmt.Errorf("a multibranch job takes gitea: and scriptPath: only (git, script and parameters are for pipeline jobs)")
		}
		if err := checkURL(g.Server); err != nil {
			return fmt.Errorf("gitea.server: %w", err)
		}
		if g.Owner == "" || g.Repository == "" {
			return fmt.Errorf("gitea: owner and repository are required")
		}
	case TypePipeline:
		if (j.Git == nil) == (j.Script == "") {
			return fmt.Errorf("a pipeline job needs exactly one of git: {remote, branch} or script:")
		}
		if j.Gitea != nil {
			return fmt.Errorf("gitea: is for multibranch jobs; a pipeline job takes git: or script:")
		}
		if j.Git != nil {
			if j.Git.Remote == "" {
				return fmt.Errorf("git.remote is required")
			}
			if j.Git.Branch == "" {
				j.Git.Branch = "main"
			}
		}
		names := map[string]bool{}
		for k, p := range j.Parameters {
			if p.Name == "" || strings.ContainsAny(p.Name, " \t\n=") {
				return fmt.Errorf("parameters[%d]: name %q must be a non-empty word", k, p.Name)
			}
			if names[p.Name] {
				return fmt.Errorf("parameters[%d]: %s is declared twice", k, p.Name)
			}
			names[p.Name] = true
		}
	case "":
		return fmt.Errorf("type is required: %s or %s", TypeMultibranch, TypePipeline)
	default:
		return fmt.Errorf("type %q is unknown: use %s or %s", j.Type, TypeMultibranch, TypePipeline)
	}
	return nil
}

// declare records a full name, refusing duplicates the way Jenkins does:
// item names are case-insensitive.
func declare(seen map[string]string, name, what string) error {
	key := strings.ToLower(name)
	if prev, ok := seen[key]; ok {
		return fmt.Errorf("%s: %s already declares an item named %s (Jenkins item names ignore case)", what, prev, name)
	}
	seen[key] = what
	return nil
}

func checkParent(folders map[string]bool, name, what string) error {
	i := strings.LastIndex(name, "/")
	if i < 0 {
		return nil
	}
	if parent := name[:i]; !folders[strings.ToLower(parent)] {
		return fmt.Errorf("%s: its folder %s is not declared under folders:", what, parent)
	}
	return nil
}

// checkItemName checks every segment of a full name as Jenkins'
// checkGoodName does.
func checkItemName(full string) error {
	if full == "" {
		return fmt.Errorf("name is required")
	}
	for _, seg := range strings.Split(full, "/") {
		if seg == "" {
			return fmt.Errorf("name %q has an empty segment", full)
		}
		if strings.TrimSpace(seg) != seg {
			return fmt.Errorf("name %q: %q starts or ends with a space", full, seg)
		}
		if seg == "." || seg == ".." {
			return fmt.Errorf("name %q: %q is not an allowed name", full, seg)
		}
		if strings.HasSuffix(seg, ".") {
			return fmt.Errorf("name %q: %q ends with '.'", full, seg)
		}
		for _, c := range seg {
			if c < 0x20 || c == 0x7f || strings.ContainsRune(`?*\%!@#$^&|<>[]:;`, c) {
				return fmt.Errorf("name %q: %q is an unsafe character in Jenkins item names", full, c)
			}
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
