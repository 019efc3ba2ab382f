// Package templates holds the files tsys-ci renders from, embedded in the
// binary so it needs nothing beside itself.
package templates

import "embed"

// Platform holds templates/platform: the example platform.yaml and the Helm
// values templates `tsys-ci platform render` fills in.
//
//go:embed platform
var Platform embed.FS

// Serve holds templates/serve, the chart of tsys-ci serve, which `tsys-ci
// platform apply` installs unless platform.yaml names another copy (all:
// keeps _helpers.tpl).
//
//go:embed all:serve
var Serve embed.FS
