package edge

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseAnnotation(t *testing.T) {
	got, err := ParseAnnotation(`[{"port":"http","hosts":["app.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Exposure{{Port: "http", Hosts: []string{"app.company.example"}}, {Port: "ssh", TCPFrontendPort: 2222}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseAnnotation = %+v, want %+v", got, want)
	}
	bad := map[string]string{
		``:                            "not a JSON list",
		`null`:                        "is null",
		`{}`:                          "not a JSON list",
		`[] []`:                       "data after",
		`[{"port":"http","host":[]}]`: "unknown field",
		`[{"hosts":["a.example"]}]`:   `"port"`,
		`[{"port":"p"}]`:              "neither",
		`[{"port":"p","hosts":["a.example"],"tcpFrontendPort":1}]`:        "both",
		`[{"port":"p","tcpFrontendPort":70000}]`:                          "not a TCP port",
		`[{"port":"p","tcpFrontendPort":-1}]`:                             "not a TCP port",
		`[{"port":"p","hosts":["a.example","a.example"]}]`:                "twice",
		`[{"port":"p","hosts":["A.example"]}]`:                            "capital",
		`[{"port":"p","tcpFrontendPort":1},{"port":"p","hosts":["a.b"]}]`: "names port \"p\" twice",
		`[{"port":"p","tcpFrontendPort":1,"resendAfterMs":500}]`:          "never resent",
		`[{"port":"p","tcpFrontendPort":1,"sticky":true}]`:                "has no cookie",
		`[{"port":"p","hosts":["a.b"],"resendAfterMs":99}]`:               "resendAfterMs 99 is out of range (100-60000)",
		`[{"port":"p","hosts":["a.b"],"resendAfterMs":60001}]`:            "out of range",
	}
	for in, want := range bad {
		if _, err := ParseAnnotation(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseAnnotation(%q) = %v, want an error mentioning %q", in, err, want)
		}
	}
}

// FuzzParseAnnotation feeds the parser what a Service's annotation may hold:
// it must never panic, and whatever it accepts must be valid (hosts pass
// ValidateHost, ports in range) and survive a round trip unchanged.
func FuzzParseAnnotation(f *testing.F) {
	for _, s := range []string{
		`[{"port":"http","hosts":["app.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`,
		`[]`, `null`, `[{"port":"p","tcpFrontendPort":65536}]`, `[{"port":"p","hosts":["A..b"]}]`,
		`[{"port":"http","hosts":["a.b","c.d"]}] x`, `[{"port":"","hosts":[]}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		list, err := ParseAnnotation(in)
		if err != nil {
			if list != nil {
				t.Fatalf("ParseAnnotation(%q) returned %v with error %v", in, list, err)
			}
			return
		}
		for _, e := range list {
			if (len(e.Hosts) > 0) == (e.TCPFrontendPort != 0) || e.Port == "" {
				t.Fatalf("ParseAnnotation(%q) accepted %+v", in, e)
			}
			if e.TCPFrontendPort < 0 || e.TCPFrontendPort > 65535 {
				t.Fatalf("ParseAnnotation(%q) accepted port %d", in, e.TCPFrontendPort)
			}
			for _, h := range e.Hosts {
				if err := ValidateHost(h); err != nil {
					t.Fatalf("ParseAnnotation(%q) accepted host %q: %v", in, h, err)
				}
			}
		}
		out, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseAnnotation(string(out))
		if err != nil || !reflect.DeepEqual(again, list) {
			t.Fatalf("round trip of %q: %s gave %+v, %v", in, out, again, err)
		}
	})
}

// FuzzValidateHost checks that every accepted host name is one HAProxy's map
// and a certificate request can carry: lowercase DNS characters only.
func FuzzValidateHost(f *testing.F) {
	for _, s := range []string{"app.company.example", "a..b", "-x.y", "x.1", "ü.example", "a.b\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if ValidateHost(h) != nil {
			return
		}
		if len(h) > 253 || !strings.Contains(h, ".") || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
			t.Fatalf("ValidateHost accepted %q", h)
		}
	})
}
