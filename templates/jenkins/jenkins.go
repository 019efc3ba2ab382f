// Package jenkins holds the Jenkins templates tsys-ci ships: the job XML
// templates `tsys-ci jenkins seed` renders (jobs/), the shared library
// (shared-library/, fetched by Jenkins from git) and the Jenkinsfile of an
// app (Jenkinsfile). The job templates are embedded in the binary.
package jenkins

import "embed"

// Jobs holds jobs/*.xml.tmpl: folder, multibranch (Gitea) and pipeline.
//
//go:embed jobs/*.xml.tmpl
var Jobs embed.FS
