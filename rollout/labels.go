package rollout

import "github.com/tsys-group/tsys-ci/internal/contract"

// Labels and annotations rollout writes for itself and for MetalLB. The
// ones other parts of tsys-ci read too (managed-by, app name, the edge
// annotation) are in internal/contract, as is the field manager.
const (
	// LabelColor tells the two Deployments of an app apart (blue, green);
	// the Service selects one color, or both while a canary is weighted.
	// Declared in internal/contract: the edge reads it too.
	LabelColor = contract.LabelColor
	// AnnotationImage and AnnotationRevision say which image and commit a
	// Deployment runs (an image digest is too long for a label value).
	AnnotationImage    = "tsys-ci.io/image"
	AnnotationRevision = "tsys-ci.io/revision"
	// AnnotationEnvSecret names the release's env Secret on its
	// Deployment and pods, so the pods of one image with other values
	// are told apart (a rolling promote that changed only values).
	AnnotationEnvSecret = "tsys-ci.io/env-secret"
	// MetalLB's annotations: the chosen address and the sharing key.
	AnnotationLBIPs       = "metallb.universe.tf/loadBalancerIPs"
	AnnotationAllowShared = "metallb.universe.tf/allow-shared-ip"
	// LabelEnvSecret ("true") marks the Secrets promote makes of the
	// spec's fromEnv variables, one per release, so the ones no release
	// in the state names any more are found and deleted.
	LabelEnvSecret = "tsys-ci.io/env-secret"
)

// Colors of the two Deployments an app alternates between.
const (
	ColorBlue  = "blue"
	ColorGreen = "green"
)

// OtherColor returns the color that is not c.
func OtherColor(c string) string {
	if c == ColorBlue {
		return ColorGreen
	}
	return ColorBlue
}

// AppLabels are the contract labels of every object of app.
func AppLabels(app string) map[string]string {
	return map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: app}
}

func colorLabels(app, color string) map[string]string {
	l := AppLabels(app)
	l[LabelColor] = color
	return l
}
