package serve

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection says how replicas of serve elect the one that acts on
// events: a coordination.k8s.io Lease in serve's own namespace (not the
// per-app lease promote takes; that one keeps a CLI promote and serve
// apart).
type LeaderElection struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	// Identity is this replica, unique among them (the pod name).
	Identity      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// LabelPod, when set, is this replica's pod (NAMESPACE/NAME): it is
	// labelled LeaderLabel=true while this replica leads, so a Service
	// selecting the label sends Harbor's deliveries and API calls to the
	// leader only. Without it a Service over both replicas sends half of
	// them to the follower, which refuses them (503), and Harbor retries
	// only 16-75 s later. At shutdown the pod's deletion deadline bounds
	// the drain (stopBy), so running deploys are handed over, not killed.
	LabelPod string
}

// LeaderLabel marks the pod of the leading replica (see
// LeaderElection.LabelPod); the chart's Service selects it.
const LeaderLabel = "tsys-ci.io/serve-leader"

// RunOptions are Run's inputs.
type RunOptions struct {
	Server   *Server
	Listener net.Listener
	// Leader elects the acting replica; nil means this one always acts.
	Leader *LeaderElection
	// ShutdownTimeout bounds the drain of requests and queued deploys.
	ShutdownTimeout time.Duration
}

// Run serves until ctx ends, then shuts down gracefully: not ready first
// (so endpoints drop the replica), in-flight requests finished, the lease
// released to the other replica, queued and running deploys drained, all
// within ShutdownTimeout, or by a margin before the kubelet kills the pod
// if that is sooner (LeaderElection.LabelPod). Deploys still running at
// the deadline are canceled, their promote leases released, and the next
// leader resumes them from the rollout state.
func Run(ctx context.Context, o RunOptions) error {
	s := o.Server
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	listener, scheme := o.Listener, "https"
	if s.tls != nil {
		listener = tls.NewListener(o.Listener, s.tls.Clone())
	} else {
		scheme = "http"
		s.log.Warn("serving plain HTTP (insecurePlainHTTP): webhook secrets and directory passwords cross the network in clear; give serve.yaml tls a certificate and key")
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(listener) }()

	leCtx, stopLE := context.WithCancel(context.Background())
	defer stopLE()
	leDone := make(chan struct{})
	if o.Leader != nil && o.Leader.LabelPod != "" {
		// A restarted container finds its pod still labelled by the
		// process before it: it leads only once it holds the Lease again.
		// A failure here is a setup error (RBAC, pod name): stop and say so.
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := o.Leader.labelPod(lctx, false)
		cancel()
		if err != nil {
			hs.Close()
			return err
		}
	}
	if o.Leader == nil {
		s.SetLeader(true)
		close(leDone)
		go func() {
			s.ResumeUnfinished(leCtx, "serve")
			s.RunStages(leCtx)
		}()
	} else {
		elector, err := o.Leader.elector(s)
		if err != nil {
			hs.Close()
			return err
		}
		go func() {
			defer close(leDone)
			// Run returns when leadership is lost; stand again until told
			// to stop.
			for leCtx.Err() == nil {
				elector.Run(leCtx)
			}
		}()
	}
	s.SetReady(true)
	s.log.Info("serving", "addr", o.Listener.Addr().String(), "scheme", scheme, "leaderElection", o.Leader != nil)

	select {
	case err := <-served:
		stopLE()
		<-leDone
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	start := time.Now()
	s.SetReady(false)
	var killAt time.Time
	var known bool
	if o.Leader != nil && o.Leader.LabelPod != "" {
		var err error
		if killAt, known, err = o.Leader.stopBy(context.Background()); err != nil {
			s.log.Error("the pod's deletion deadline is unknown; draining until the shutdown timeout", "err", err)
		}
	}
	until, why := drainDeadline(start, o.ShutdownTimeout, killAt, known)
	s.log.Info("shutting down", "timeout", o.ShutdownTimeout.String(), "drainUntil", until.UTC().Format(time.RFC3339Nano), "because", why)
	deadline, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	var errs []error
	if err := hs.Shutdown(deadline); err != nil {
		errs = append(errs, fmt.Errorf("finishing in-flight requests: %w", err))
	}
	// Stop acting on events and hand the lease over (ReleaseOnCancel), so
	// the other replica takes new events while this one drains.
	stopLE()
	<-leDone
	s.SetLeader(false)
	if err := s.Queue().Drain(deadline); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("shut down", "seconds", time.Since(start).Seconds(), "clean", len(errs) == 0)
	return errors.Join(errs...)
}

func (le *LeaderElection) elector(s *Server) (*leaderelection.LeaderElector, error) {
	if le.LeaseDuration == 0 {
		le.LeaseDuration, le.RenewDeadline, le.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(le.Namespace, le.Name),
		Client:     le.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
		ReleaseOnCancel: true, Name: le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				s.SetLeader(true)
				s.log.Info("leading", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
				le.keepLabel(ctx, s)
				// What the previous leader left under way is this one's now.
				s.ResumeUnfinished(ctx, le.Identity)
				// Then the staged pipelines, from their record, until
				// leadership ends.
				go s.RunStages(ctx)
			},
			OnStoppedLeading: func() {
				s.SetLeader(false)
				if le.LabelPod != "" {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					if err := le.labelPod(ctx, false); err != nil {
						s.log.Error("leader label not removed; the Service may send requests here (answered 503) until the pod goes", "pod", le.LabelPod, "err", err)
					}
					cancel()
				}
				s.log.Warn("not leading", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
			},
			OnNewLeader: func(id string) {
				s.log.Info("leader", "lease", le.Namespace+"/"+le.Name, "holder", id)
			},
		},
	})
}

// labelPod sets (leading) or removes LeaderLabel on this replica's pod.
func (le *LeaderElection) labelPod(ctx context.Context, leading bool) error {
	ns, name, ok := strings.Cut(le.LabelPod, "/")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("leader pod %q is not NAMESPACE/NAME", le.LabelPod)
	}
	var value any // JSON null removes the label
	if leading {
		value = "true"
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{LeaderLabel: value}}})
	if _, err := le.Client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("labelling pod %s %s=%v (serve's ServiceAccount needs patch on pods in its namespace): %w", le.LabelPod, LeaderLabel, leading, err)
	}
	return nil
}

// keepLabel labels the pod as the leader's, trying again every retry
// period until it works or leadership ends: until then the Service has no
// endpoint and Harbor's deliveries wait for its retry.
func (le *LeaderElection) keepLabel(ctx context.Context, s *Server) {
	if le.LabelPod == "" {
		return
	}
	for {
		err := le.labelPod(ctx, true)
		if err == nil {
			s.log.Info("leader label set", "pod", le.LabelPod, "label", LeaderLabel)
			return
		}
		s.log.Error("leader label not set; retrying", "pod", le.LabelPod, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(le.RetryPeriod, time.Second)):
		}
	}
}
