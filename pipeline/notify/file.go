package notify

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// File is a notifications file for 'tsys-ci promote --notify-config': the
// notifications: section of serve.yaml, alone, so a team that configured
// serve gives Jenkins and laptops the same targets.
type File struct {
	Notifications []Target `json:"notifications"`
}

// LoadFile reads and checks a notifications file. Unknown fields are
// refused, as in serve.yaml, so a misspelt key does not silently notify
// no one.
func LoadFile(path string) ([]Target, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Problems: []string{fmt.Sprintf("reading %s: %v", path, err)}}
	}
	var f File
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, &ConfigError{Problems: []string{fmt.Sprintf("%s: %v; it holds notifications: as serve.yaml does", path, err)}}
	}
	if len(f.Notifications) == 0 {
		return nil, &ConfigError{Problems: []string{fmt.Sprintf("%s names no target under notifications:; add one, or drop --notify-config", path)}}
	}
	if err := Validate(path+": notifications", f.Notifications); err != nil {
		return nil, err
	}
	return f.Notifications, nil
}
