package doctor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Release is one Helm release as doctor compares it with platform.yaml:
// what `helm list -A` shows.
type Release struct {
	Name         string
	Namespace    string
	Chart        string
	ChartVersion string
	Revision     int
	Status       string // deployed, failed, superseded, pending-upgrade...
}

// helmReleaseType is the type of the Secrets Helm v3 stores releases in
// (its default "secret" storage driver), one per revision.
const helmReleaseType = "helm.sh/release.v1"

// releaseFromSecret decodes a Helm v3 release Secret: data.release is
// base64 of gzip of the release's JSON (helm.sh/helm/v3/pkg/storage/driver,
// util.go encodeRelease). Only the fields doctor needs are read.
func releaseFromSecret(s *corev1.Secret) (Release, error) {
	raw, err := base64.StdEncoding.DecodeString(string(s.Data["release"]))
	if err != nil {
		return Release{}, fmt.Errorf("Helm release Secret %s/%s: data.release is not base64: %w", s.Namespace, s.Name, err)
	}
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return Release{}, fmt.Errorf("Helm release Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		if raw, err = io.ReadAll(io.LimitReader(zr, 64<<20)); err != nil {
			return Release{}, fmt.Errorf("Helm release Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	var rel struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		Version   int    `json:"version"`
		Info      struct {
			Status string `json:"status"`
		} `json:"info"`
		Chart struct {
			Metadata struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"metadata"`
		} `json:"chart"`
	}
	if err := json.Unmarshal(raw, &rel); err != nil {
		return Release{}, fmt.Errorf("Helm release Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return Release{Name: rel.Name, Namespace: rel.Namespace, Chart: rel.Chart.Metadata.Name,
		ChartVersion: rel.Chart.Metadata.Version, Revision: rel.Version, Status: rel.Info.Status}, nil
}

// addReleaseSecret keeps the newest revision of each release.
func (s *Snapshot) addReleaseSecret(sec *corev1.Secret) error {
	rel, err := releaseFromSecret(sec)
	if err != nil {
		return err
	}
	s.ReleasesRead = true
	for i, r := range s.Releases {
		if r.Name == rel.Name && r.Namespace == rel.Namespace {
			if rel.Revision > r.Revision {
				s.Releases[i] = rel
			}
			return nil
		}
	}
	s.Releases = append(s.Releases, rel)
	return nil
}

// collectReleases reads Helm's release Secrets. Without the right to read
// Secrets the comparison of components is skipped and said so (an
// operator may run doctor with read access that excludes Secrets).
func collectReleases(ctx context.Context, cs kubernetes.Interface, s *Snapshot) error {
	list, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if apierrors.IsForbidden(err) {
		s.ReleasesUnreadable = "listing Secrets (where Helm keeps its releases) is forbidden to this account"
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing Helm release Secrets: %w", err)
	}
	s.ReleasesRead = true
	for i := range list.Items {
		if list.Items[i].Type != helmReleaseType {
			continue
		}
		if err := s.addReleaseSecret(&list.Items[i]); err != nil {
			return err
		}
	}
	return nil
}
