package edge

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseWeights(t *testing.T) {
	good := map[string]map[string]int{
		`{"blue":95,"green":5}`:          {"blue": 95, "green": 5},
		` {"green":100} `:                {"green": 100},
		`{"blue":0,"green":100}`:         {"blue": 0, "green": 100},
		`{"blue":50, "green":50}` + "\n": {"blue": 50, "green": 50},
	}
	for in, want := range good {
		got, err := ParseWeights(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseWeights(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		``:                              "not a JSON object",
		`null`:                          "not a JSON object",
		`[]`:                            "not a JSON object",
		`{"blue":95,"green":5`:          "not a JSON object",
		`{"blue":95,"green":5} {}`:      "data after",
		`{"blue":90,"green":5}`:         "sum to 95",
		`{}`:                            "sum to 0",
		`{"bleu":100}`:                  `color "bleu"`,
		`{"blue":"100"}`:                "whole percents",
		`{"blue":100.0}`:                "whole percents",
		`{"blue":1e2}`:                  "whole percents",
		`{"blue":-5,"green":105}`:       "whole percents",
		`{"blue":101}`:                  "whole percents",
		`{"blue":50,"blue":50}`:         "twice",
		`{"blue":null,"green":100}`:     "whole percents",
		`{"blue":{"a":1},"green":100}`:  "whole percents",
		`{"blue":99999999999999999999}`: "whole percents",
	}
	for in, want := range bad {
		if _, err := ParseWeights(in); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "tsys-ci.io/edge-weights") {
			t.Errorf("ParseWeights(%q) = %v, want an error naming the annotation and mentioning %q", in, err, want)
		}
	}
}

// FuzzParseWeights: the annotation is outside input (anyone who may edit
// the Service writes it); the parser must never panic, and what it accepts
// is always a valid split of the traffic.
func FuzzParseWeights(f *testing.F) {
	for _, s := range []string{`{"blue":95,"green":5}`, `{"green":100}`, `{"blue":50,"blue":50}`, `{"blue":1e2}`, `{`, `[]`, `{"blue":-0,"green":100}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeights(s)
		if err != nil {
			return
		}
		sum := 0
		for c, n := range w {
			if n < 0 || n > 100 || (c != "blue" && c != "green") {
				t.Fatalf("ParseWeights(%q) accepted %v", s, w)
			}
			sum += n
		}
		if sum != 100 {
			t.Fatalf("ParseWeights(%q) accepted %v, summing to %d", s, w, sum)
		}
	})
}
