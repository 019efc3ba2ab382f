package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

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
}

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
// within ShutdownTimeout. Deploys still running at the deadline are
// canceled; promote resumes or rolls them back on its next run.
func Run(ctx context.Context, o RunOptions) error {
	s := o.Server
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(o.Listener) }()

	leCtx, stopLE := context.WithCancel(context.Background())
	defer stopLE()
	leDone := make(chan struct{})
	if o.Leader == nil {
		s.SetLeader(true)
		close(leDone)
		go s.ResumeUnfinished(leCtx, "serve")
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
	s.log.Info("serving", "addr", o.Listener.Addr().String(), "leaderElection", o.Leader != nil)

	select {
	case err := <-served:
		stopLE()
		<-leDone
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	start := time.Now()
	s.log.Info("shutting down", "timeout", o.ShutdownTimeout.String())
	s.SetReady(false)
	deadline, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
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
				// What the previous leader left under way is this one's now.
				s.ResumeUnfinished(ctx, le.Identity)
			},
			OnStoppedLeading: func() {
				s.SetLeader(false)
				s.log.Warn("not leading", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
			},
			OnNewLeader: func(id string) {
				s.log.Info("leader", "lease", le.Namespace+"/"+le.Name, "holder", id)
			},
		},
	})
}
