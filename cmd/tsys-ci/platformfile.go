package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/platform"
)

// platformFileFlag is --platform: the platform.yaml `platform render` reads,
// from which registry setup and the jenkins commands take Harbor's,
// Jenkins' and serve's addresses, so nothing is typed twice (issue 29).
// Not -f: jenkins seed's -f is its jobs file.
func platformFileFlag() cli.Flag {
	return &cli.StringFlag{
		Name: "platform", EnvVars: []string{"TSYS_CI_PLATFORM"},
		Usage: "platform.yaml to take the addresses from that no flag gives (flags and their environment variables win over it)",
	}
}

// loadPlatformFile reads and validates --platform as the platform commands
// do; nil without --platform. A bad file is bad input (exit 2).
func loadPlatformFile(c *cli.Context) (*platform.Spec, error) {
	path := c.String("platform")
	if path == "" {
		return nil, nil
	}
	spec, err := platform.LoadSpec(path)
	if err != nil {
		return nil, asUsage(fmt.Errorf("--platform: %w", err))
	}
	return spec, nil
}

// platformSetting is one value a command takes from its flag or else from
// platform.yaml: kubectl's order, what is given on the command line first.
type platformSetting struct {
	// flag is how the flag is named in messages: "--harbor (TSYS_CI_HARBOR_URL)".
	flag string
	// field is the platform.yaml field that gives it: "domains.harbor".
	field string
	get   func(*platform.Spec) string
}

// resolve is the flag's value when it is given, else platform.yaml's
// (spec nil: none), else "". fromPlatform says the value is platform.yaml's.
func (s platformSetting) resolve(flagValue string, spec *platform.Spec) (value string, fromPlatform bool) {
	if flagValue != "" || spec == nil {
		return flagValue, false
	}
	v := s.get(spec)
	return v, v != ""
}

// missing names both ways to give the setting.
func (s platformSetting) missing() string {
	return s.flag + " or --platform FILE (its " + s.field + ")"
}

// The settings platform.yaml gives.
var (
	harborURLSetting = platformSetting{
		flag: "--harbor (TSYS_CI_HARBOR_URL)", field: "domains.harbor",
		get: func(s *platform.Spec) string { return s.URL("harbor") },
	}
	serveWebhookSetting = platformSetting{
		flag: "--webhook-url", field: "paas.serve",
		get: (*platform.Spec).ServeWebhookURL,
	}
	jenkinsURLSetting = platformSetting{
		flag: "--url (JENKINS_URL)", field: "domains.jenkins",
		get: func(s *platform.Spec) string { return s.URL("jenkins") },
	}
)
