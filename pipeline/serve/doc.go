// Package serve is `tsys-ci serve`: the in-cluster service that turns Harbor's
// push webhooks (and a small JSON API with directory login) into promotes.
//
// The pieces, in the order a push meets them:
//
//   - webhook.go, harborevent.go: Harbor's webhook is checked (secret, size,
//     replay) and parsed into a HarborEvent; config.go's policies say which app
//     it deploys (Match).
//   - server.go: the HTTP API (webhook, manual promote and rollback, deploy
//     history, health, metrics) with ldap.go's directory login and
//     throttle.go's per-user throttle.
//   - deploy.go, promote.go: the DeployQueue runs one deploy per app at a time
//     through rollout's Promoter; eventsink.go records each result as a
//     Kubernetes Event on the app's namespace.
//   - run.go: replicas elect a leader with a Lease; only the leader deploys.
//     resume.go, holdergone.go and stopby.go hand unfinished deploys over when a
//     replica dies or runs out of time.
//
// Its tests against a real API server live in clustertest.
package serve
