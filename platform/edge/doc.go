// Package edge keeps the company's HAProxy in front of the cluster in step
// with the apps tsys-ci manages.
//
// The input is the cluster: every LoadBalancer Service labelled
// app.kubernetes.io/managed-by=tsys-ci that carries the tsys-ci.io/edge
// annotation. Build turns those Services into a Model (one backend per
// exposed port aimed at the Service's load-balancer address, host-name routes
// for HTTP ports, TCP frontends for pass-through ports) and rejects bad input
// with errors that name the apps involved. Render turns a Model into the
// files HAProxy reads: a configuration fragment, the host map the company's
// HTTPS frontend routes with, and the crt-list of host names that need
// certificates; the same Model always gives the same bytes. Syncer installs
// those files on the HAProxy host, changing server addresses through the
// runtime API when that is all that changed and reloading (after `haproxy -c`)
// otherwise. Watch runs Syncer from cluster events.
//
// The edge lives in its own package under platform/ because it has its own
// vocabulary (backends, frontends, servers), its own outside program (a real
// HAProxy in its tests) and golden files, and it is developed beside the rest
// of platform without sharing names with it.
package edge
