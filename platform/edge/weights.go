package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tsys-group/tsys-ci/internal/contract"
)

// Colors are the versions an app alternates between (rollout's blue and
// green). The edge knows them so that a weight for a color that cannot
// exist (a typo, "bleu") is reported instead of silently ignored.
var Colors = []string{"blue", "green"}

// ParseWeights parses the tsys-ci.io/edge-weights annotation: a JSON object
// color -> whole percent, every color known, every value 0-100, summing to
// 100. Promote writes it; the edge applies it at run time. It is strict
// (duplicate keys, fractions and trailing data are errors) because a weight
// the edge misread would send users to a version promote did not choose.
func ParseWeights(value string) (map[string]int, error) {
	const shape = `a JSON object of color to whole percent summing to 100, e.g. {"blue":95,"green":5}`
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("annotation %s %q is not %s", contract.AnnotationEdgeWeights, value, shape)
	}
	weights := map[string]int{}
	sum := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("annotation %s %q is not %s: %v", contract.AnnotationEdgeWeights, value, shape, err)
		}
		color := tok.(string) // an object's keys are strings
		var n json.RawMessage
		if err := dec.Decode(&n); err != nil {
			return nil, fmt.Errorf("annotation %s %q: the weight of %q is not a number: %v", contract.AnnotationEdgeWeights, value, color, err)
		}
		if !slices.Contains(Colors, color) {
			return nil, fmt.Errorf("annotation %s %q names color %q; the colors are %s", contract.AnnotationEdgeWeights, value, color, strings.Join(Colors, " and "))
		}
		if _, dup := weights[color]; dup {
			return nil, fmt.Errorf("annotation %s %q names %q twice", contract.AnnotationEdgeWeights, value, color)
		}
		w, err := strconv.Atoi(string(n)) // a JSON integer; "5", 5.0 and 1e2 are refused
		if err != nil || w < 0 || w > 100 || string(n) != strconv.Itoa(w) {
			return nil, fmt.Errorf("annotation %s %q: the weight of %q is %s; weights are whole percents from 0 to 100", contract.AnnotationEdgeWeights, value, color, n)
		}
		weights[color] = w
		sum += w
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("annotation %s %q is not %s: %v", contract.AnnotationEdgeWeights, value, shape, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("annotation %s %q has data after its JSON object", contract.AnnotationEdgeWeights, value)
	}
	if sum != 100 {
		return nil, fmt.Errorf("annotation %s %q: the weights sum to %d; they must sum to 100", contract.AnnotationEdgeWeights, value, sum)
	}
	return weights, nil
}

// FormatWeights writes weights as the annotation holds them, colors sorted,
// for messages.
func FormatWeights(w map[string]int) string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s %d%%", c, w[c]))
	}
	return strings.Join(parts, ", ")
}
