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
)

// Annotations read across packages.
const (
	// AnnotationEdge, on an app's Service, is the JSON list of how its
	// ports are reached from outside (written by rollout, read by the edge).
	AnnotationEdge = "tsys-ci.io/edge"
	// AnnotationReplicated="true" on a StorageClass says its volumes are
	// replicated although its provisioner does not say so (read by the
	// platform doctor).
	AnnotationReplicated = "tsys-ci.io/replicated"
)

// FieldManager names tsys-ci's changes in managedFields (server-side apply
// and updates), for rollout and platform apply alike.
const FieldManager = "tsys-ci"
