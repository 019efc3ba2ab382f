package whiteboard

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/rollout"
)

// TestAppSpecsLoad reads both whiteboards' app specs through rollout's own
// loader (strict decoding, defaults, validation) and checks they are the
// single-writer, one-replica, recreate apps their comments say.
func TestAppSpecsLoad(t *testing.T) {
	for _, c := range []struct {
		path, name, mount string
		port              int32
	}{
		{"tsys-ci.yaml", "whiteboard", "/data", 8080},
		{filepath.Join("..", "..", "templates", "app", "wbo.tsys-ci.yaml"), "wbo", "/opt/app/server-data", 80},
	} {
		spec, err := rollout.LoadSpec(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Name != c.name || *spec.Replicas != 1 || spec.Strategy.Type != rollout.StrategyRecreate ||
			len(spec.Volumes) != 1 || !spec.Volumes[0].SingleWriter() || spec.Volumes[0].MountPath != c.mount ||
			spec.Volumes[0].Class != rollout.DefaultVolumeClass || spec.Ports[0].ContainerPort != c.port {
			t.Errorf("%s decoded as %+v", c.path, spec)
		}
	}
}

// TestWhiteboardSpecRefusesBlueGreen: the same spec with blue/green is
// refused by the validation, so the recreate above is forced, not chosen
// by taste.
func TestWhiteboardSpecRefusesBlueGreen(t *testing.T) {
	spec, err := rollout.LoadSpec("tsys-ci.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec.Strategy.Type = rollout.StrategyBlueGreen
	if err := spec.Validate(); err == nil || !strings.Contains(err.Error(), "single-writer") {
		t.Fatalf("blue/green on the single-writer volume: %v", err)
	}
}
