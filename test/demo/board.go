package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tsys-group/tsys-ci/test/whiteboard"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stroke is the whiteboard's own type: the demo speaks its API, so it uses
// its definition rather than a copy that could drift.
type Stroke = whiteboard.Stroke

var client = &http.Client{Timeout: 3 * time.Second}

// serviceAddr is http://IP:PORT of an app's LoadBalancer Service port
// "http": the MetalLB address promote chose, reachable from the host.
func (d *Demo) serviceAddr(ctx context.Context, ns, name string) (string, error) {
	c, err := d.lab.Client()
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		svc, err := c.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
			for _, p := range svc.Spec.Ports {
				if p.Name == "http" {
					return fmt.Sprintf("http://%s:%d", svc.Status.LoadBalancer.Ingress[0].IP, p.Port), nil
				}
			}
			return "", fmt.Errorf("service %s/%s has no port named http", ns, name)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("service %s/%s has no load-balancer address after 2m (err %v): is MetalLB running? (make lab-status)", ns, name, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// draw posts one stroke and returns it as acknowledged.
func draw(ctx context.Context, base, board string, s Stroke) (Stroke, error) {
	body, _ := json.Marshal(s)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/boards/"+board+"/strokes", bytes.NewReader(body))
	if err != nil {
		return Stroke{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Stroke{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return Stroke{}, fmt.Errorf("POST %s/api/boards/%s/strokes: %s: %s", base, board, resp.Status, bytes.TrimSpace(b))
	}
	var out Stroke
	if err := json.Unmarshal(b, &out); err != nil {
		return Stroke{}, fmt.Errorf("decoding the acknowledged stroke %q: %w", b, err)
	}
	return out, nil
}

// get is one GET; a status other than 200 is an error.
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// readBoard reads the board and checks that every acknowledged stroke is in
// it exactly as acknowledged.
func readBoard(ctx context.Context, base, board string, acked []Stroke) ([]byte, error) {
	b, err := get(ctx, base+"/api/boards/"+board)
	if err != nil {
		return nil, err
	}
	return b, checkBoard(b, board, acked)
}

// checkBoard says which acknowledged stroke a board's JSON lacks, if any.
func checkBoard(b []byte, board string, acked []Stroke) error {
	var got struct {
		Strokes []Stroke `json:"strokes"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		return fmt.Errorf("decoding board %s: %w", board, err)
	}
	have := map[string]bool{}
	for _, s := range got.Strokes {
		k, _ := json.Marshal(s)
		have[string(k)] = true
	}
	for _, s := range acked {
		k, _ := json.Marshal(s)
		if !have[string(k)] {
			return fmt.Errorf("board %s lost the acknowledged stroke %s", board, k)
		}
	}
	return nil
}

// waitServed polls GET url until it answers 200 or the deadline passes.
func waitServed(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := get(ctx, url)
		if err == nil {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not answer within %s: %w", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
