package pipeline

import (
	"reflect"
	"testing"

	"github.com/tsys-group/tsys-ci/registry"
)

func TestDefaultRepository(t *testing.T) {
	addr := registry.EmbeddedAddr
	if got := DefaultRepository(addr, map[string]string{LabelJob: "Web/Shop Front"}, "/x"); got != addr+"/library/web-shop-front" {
		t.Errorf("from the job: %s", got)
	}
	if got := DefaultRepository(addr, nil, "/home/dev/My_App"); got != addr+"/library/my-app" {
		t.Errorf("from the folder: %s", got)
	}
	if _, err := registry.ParseRepository(DefaultRepository(addr, nil, "/")); err != nil {
		t.Errorf("default for /: %v", err)
	}
}

func TestDefaultTags(t *testing.T) {
	got := DefaultTags(map[string]string{LabelRevision: "0123456789abcdef", LabelBuildNumber: "12"})
	if !reflect.DeepEqual(got, []string{"0123456", "build-12"}) {
		t.Errorf("default tags %v", got)
	}
	if got := DefaultTags(nil); got != nil {
		t.Errorf("default tags without commit or build: %v, want none", got)
	}
}
