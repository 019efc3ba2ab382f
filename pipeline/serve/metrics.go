package serve

import "github.com/prometheus/client_golang/prometheus"

// Metrics are tsys-ci serve's Prometheus metrics. They are registered
// on a registry the caller owns (not the global one), so tests and two
// servers in one process never collide.
type Metrics struct {
	WebhookEvents  *prometheus.CounterVec
	Deploys        *prometheus.CounterVec
	DeployDuration *prometheus.HistogramVec
	LoginFailures  *prometheus.CounterVec
}

// NewMetrics creates and registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		WebhookEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tsys_ci", Subsystem: "serve", Name: "webhook_events_total",
			Help: "Harbor webhook deliveries by result (accepted, ignored, unauthorized, replay, stale, bad_request, too_large, unsupported_media, not_leader, queue_full).",
		}, []string{"result"}),
		Deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tsys_ci", Subsystem: "serve", Name: "deploys_total",
			Help: "Finished deploys (promote or rollback) by kind and result (succeeded, failed, rolled_back, canceled).",
		}, []string{"kind", "result"}),
		DeployDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tsys_ci", Subsystem: "serve", Name: "deploy_duration_seconds",
			Help:    "Time from the start of a deploy to its result, by kind and result.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800},
		}, []string{"kind", "result"}),
		LoginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tsys_ci", Subsystem: "serve", Name: "login_failures_total",
			Help: "Refused logins to the API by reason (credentials, throttled, forbidden, directory_error, no_credentials).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.WebhookEvents, m.Deploys, m.DeployDuration, m.LoginFailures)
	return m
}
