// Package doctor is `tsys-ci platform doctor`: the single-point-of-failure
// audit of a live cluster.
//
// CollectSnapshot reads nodes, pods, workloads, Services, storage classes,
// volumes and (if installed) Longhorn's settings into a plain Snapshot; Analyze
// turns a Snapshot into Findings, each with a Severity, what was seen and what
// to do. Keeping the reading apart from the judging lets the tests (and a user
// with only `kubectl get -o yaml` listings, see ParseSnapshot) judge a cluster
// they cannot reach.
//
// It has its own vocabulary (Snapshot, Finding, Severity, speakers,
// workloads) and shares only platform.yaml's defaults with package platform.
package doctor
