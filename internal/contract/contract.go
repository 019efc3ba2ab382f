// Package contract holds the label and annotation names that tie tsys-ci's
// parts together through the cluster: rollout writes them on every object it
// manages for an app; the edge, the platform doctor and serve's event sink
// read or repeat them. Declared once here so that the writer and its readers
// cannot drift apart.
//
// The values are a contract with objects already in clusters: changing one
// orphans everything written with the old value. The package imports
// nothing, so any package of tsys-ci can depend on it.
package contract

// Labels on every object tsys-ci manages for an app.
const (
	// LabelManagedBy with the value ManagedBy marks an object as tsys-ci's.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "tsys-ci"
	// LabelAppName names the app an object belongs to.
	LabelAppName = "app.kubernetes.io/name"
	// LabelColor tells an app's two versions apart (blue, green): on its
	// Deployments and their pods, and on the per-color Services through
	// which the edge reaches each version (ColorServiceName).
	LabelColor = "tsys-ci.io/color"
)

// ColorServiceName is the Service that reaches one color of an app's
// pods from outside the cluster: type NodePort with externalTrafficPolicy
// Local, selecting the app and the color, with the app Service's HTTP
// ports under the same names. Rollout writes one per color for every app
// with host names at the edge; the edge gives each color one HAProxy
// server pool over the nodes' NodePorts. Local policy makes a node's port
// reach only that node's pods, so a node that freezes takes only its own
// servers with it and the edge's retries land on a live one.
func ColorServiceName(app, color string) string { return app + "-" + color }

// Annotations read across packages.
const (
	// AnnotationEdge, on an app's Service, is the JSON list of how its
	// ports are reached from outside (written by rollout, read by the edge).
	AnnotationEdge = "tsys-ci.io/edge"
	// AnnotationEdgeWeights, on the same Service, is the share of the
	// edge's requests each color gets, in whole percent summing to 100, as
	// JSON: {"blue":95,"green":5}. Only promote writes it (one writer);
	// only the edge applies it, through HAProxy's runtime API, never by a
	// reload. Absent, the color the Service selects gets 100.
	AnnotationEdgeWeights = "tsys-ci.io/edge-weights"
	// AnnotationEdgeCandidate, on the same Service, is the color being
	// promoted while it is not yet the one the Service selects: the edge
	// sends requests carrying CanaryHeader: CanaryAlways to it whatever
	// the weights, so testers reach a new version before any user does.
	// Only promote writes it; absent when no promote is under way.
	AnnotationEdgeCandidate = "tsys-ci.io/edge-candidate"
	// AnnotationReplicated="true" on a StorageClass says its volumes are
	// replicated although its provisioner does not say so (read by the
	// platform doctor).
	AnnotationReplicated = "tsys-ci.io/replicated"
)

// FieldManager names tsys-ci's changes in managedFields (server-side apply
// and updates), for rollout and platform apply alike.
const FieldManager = "tsys-ci"

// Bounds of an HTTP port's resendAfterMs in AnnotationEdge: how long the
// edge waits for an answer before it sends an idempotent request again to
// another node of the same version (HAProxy's timeout server with
// retry-on response-timeout). Below the minimum a busy but healthy node
// would see its requests doubled; above the maximum it no longer rides
// over a frozen node.
const (
	ResendAfterMinMs = 100
	ResendAfterMaxMs = 60000
)

// CanaryHeader with the value CanaryAlways sends a request to the version
// being promoted (AnnotationEdgeCandidate), at the edge by version.
const (
	CanaryHeader = "X-Tsys-Canary"
	CanaryAlways = "always"
)
