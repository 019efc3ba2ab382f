// Package notify tells people what promote and serve did: a promote
// started, switched, promoted, rolled back (with the reason) or aborted,
// and a serve deploy refused. Each event goes to the targets configured
// for its namespace or app: a generic JSON webhook, Slack- or
// Teams-compatible incoming webhooks, or e-mail over SMTP.
//
// Delivery never blocks a deploy: Notify only queues the event; each
// target is delivered to on its own goroutine, retried with exponential
// back-off, and every outcome is counted (Metrics), so a receiver that is
// down costs the deploy nothing and is visible on /metrics.
package notify
