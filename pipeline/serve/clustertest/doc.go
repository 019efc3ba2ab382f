// Package clustertest holds tsys-ci serve's tests against a real API
// server (test/apiserver): leader election between two replicas, the deploy
// Events, and deploys run through rollout's promote. They live apart from
// pipeline's own tests so those stay fast and need no etcd.
package clustertest
