package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at link time (make build: -X main.version=...). A plain
// `go build` falls back to the module's build information.
var version = "dev"

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:   "version",
		Usage:  "print the version of tsys-ci and how it was built",
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintf(c.App.Writer, "tsys-ci %s (%s, %s/%s%s)\n",
				version, runtime.Version(), runtime.GOOS, runtime.GOARCH, vcsSuffix())
			return err
		},
	}
}

// vcsSuffix names the commit the binary was built from when Go recorded it.
func vcsSuffix() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return ", commit " + rev + dirty
}
