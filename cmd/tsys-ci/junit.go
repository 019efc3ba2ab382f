package main

import (
	"encoding/xml"
	"fmt"
	"os"

	"github.com/tsys-group/tsys-ci/rollout"
)

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes the promote's probes and outcome as a JUnit report, so
// Jenkins shows them on the build page.
func writeJUnit(path string, res *rollout.Result) error {
	suite := junitSuite{Name: "promote " + res.App, Time: res.Duration.Seconds()}
	for _, p := range res.Probes {
		c := junitCase{Name: "probe " + p.Probe, ClassName: "tsys-ci.promote." + res.App}
		if !p.Passed {
			c.Failure = &junitFailure{Message: p.Reason, Text: fmt.Sprintf("%s: %d attempts, %s", p.URL, p.Attempts, p.Reason)}
		}
		suite.Cases = append(suite.Cases, c)
	}
	outcome := junitCase{Name: "promote " + res.Image, ClassName: "tsys-ci.promote." + res.App, Time: res.Duration.Seconds()}
	if res.Result != rollout.ResultPromoted && res.Result != "unchanged" {
		outcome.Failure = &junitFailure{Message: res.Result + ": " + res.Reason, Text: res.Reason}
	}
	suite.Cases = append(suite.Cases, outcome)
	for _, c := range suite.Cases {
		suite.Tests++
		if c.Failure != nil {
			suite.Failures++
		}
	}
	data, err := xml.MarshalIndent(suite, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding JUnit report: %w", err)
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), append(data, '\n')...), 0o644); err != nil {
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	return nil
}
