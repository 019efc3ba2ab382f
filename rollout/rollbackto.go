package rollout

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RollbackTo puts a recorded version back ('tsys-ci promote --rollback
// --to N|DIGEST'): any entry of the app's history, not only the previous
// version, promoted again through the spec's strategy, probes and
// analysis, so a version that fails now is rolled back as any other. to is
// the entry's number as 'tsys-ci status' shows it ([1] is the newest), or
// its image by digest (the full reference, or sha256:... alone). The
// entry's image is checked again as recorded images are (VerifyRecorded,
// the source check), and it runs with the env Secret it ran with, not
// with today's environment.
func (p *Promoter) RollbackTo(ctx context.Context, spec *AppSpec, to string) (*Result, error) {
	st, err := Status(ctx, p.Client, spec.Namespace, spec.Name)
	if err != nil {
		return nil, err
	}
	if st == nil || len(st.History) == 0 {
		return nil, &badRollbackTarget{fmt.Sprintf("%s has no recorded versions to roll back to", spec.Name)}
	}
	entry, err := historyEntry(st.History, to)
	if err != nil {
		return nil, err
	}
	if err := p.verifyRecorded(ctx, spec, entry.Image); err != nil {
		return nil, err
	}
	req := Request{Spec: spec, Image: entry.Image, Revision: entry.Revision, RecordedSecret: entry.Secret}
	if entry.Secret != "" && HasFromEnv(spec) {
		if err := p.recordedSecretFits(ctx, spec, entry.Secret); err != nil {
			return nil, err
		}
	}
	if p.Out != nil && entry.Result != ResultPromoted {
		fmt.Fprintf(p.Out, "%s: note: %s was %s when it ran (%s); its probes and analysis judge it again now\n", spec.Name, entry.Image, entry.Result, entry.Reason)
	}
	return p.Promote(ctx, req)
}

// badRollbackTarget is a --to that names no recorded version: the user's
// to fix (exit 2).
type badRollbackTarget struct{ msg string }

func (e *badRollbackTarget) Error() string  { return e.msg }
func (e *badRollbackTarget) BadInput() bool { return true }

// historyEntry finds to in the history (oldest first, as recorded): a
// number counted from the newest, or an image by digest.
func historyEntry(h []HistoryEntry, to string) (*HistoryEntry, error) {
	if n, err := strconv.Atoi(strings.TrimPrefix(to, "#")); err == nil {
		if n < 1 || n > len(h) {
			return nil, &badRollbackTarget{fmt.Sprintf("--to %s: the history has versions 1 (newest) to %d; 'tsys-ci status APP' lists them", to, len(h))}
		}
		return &h[len(h)-n], nil
	}
	for i := len(h) - 1; i >= 0; i-- {
		img := h[i].Image
		if img == to || (strings.HasPrefix(to, "sha256:") && strings.HasSuffix(img, "@"+to)) {
			return &h[i], nil
		}
	}
	return nil, &badRollbackTarget{fmt.Sprintf("--to %s: no recorded version has that image; give its number or digest as 'tsys-ci status APP' shows them", to)}
}

// recordedSecretFits checks, before anything changes, that a recorded
// release's env Secret still exists and holds every variable today's spec
// reads from the environment.
func (p *Promoter) recordedSecretFits(ctx context.Context, spec *AppSpec, name string) error {
	sec, err := p.Client.CoreV1().Secrets(spec.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the env Secret %s/%s that version ran with is gone; promote its image again with today's environment instead (--image)", spec.Namespace, name)
	}
	if err != nil {
		return fmt.Errorf("reading the env Secret %s/%s that version ran with: %w", spec.Namespace, name, err)
	}
	var missing []string
	for _, e := range spec.Env {
		if _, ok := sec.Data[e.Name]; e.FromEnv != "" && !ok {
			missing = append(missing, e.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the env Secret %s/%s that version ran with has no %s, which the spec reads now (added since); promote its image again with today's environment instead (--image)", spec.Namespace, name, strings.Join(missing, ", "))
	}
	return nil
}
