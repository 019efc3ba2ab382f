package rollout

// Labels and annotations tsys-ci writes. The first two are the contract
// with the edge and the platform doctor: every object tsys-ci manages for
// an app carries them.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelName      = "app.kubernetes.io/name"
	ManagedBy      = "tsys-ci"
	// LabelColor tells the two Deployments of an app apart (blue, green);
	// the Service selects one color, or both while a canary is weighted.
	LabelColor = "tsys-ci.io/color"
	// AnnotationImage and AnnotationRevision say which image and commit a
	// Deployment runs (an image digest is too long for a label value).
	AnnotationImage    = "tsys-ci.io/image"
	AnnotationRevision = "tsys-ci.io/revision"
	// AnnotationEdge is the edge wiring on the app's Service (JSON).
	AnnotationEdge = "tsys-ci.io/edge"
	// MetalLB's annotations: the chosen address and the sharing key.
	AnnotationLBIPs       = "metallb.universe.tf/loadBalancerIPs"
	AnnotationAllowShared = "metallb.universe.tf/allow-shared-ip"
	// FieldManager owns every field tsys-ci applies (server-side apply).
	FieldManager = "tsys-ci"
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
	return map[string]string{LabelManagedBy: ManagedBy, LabelName: app}
}

func colorLabels(app, color string) map[string]string {
	l := AppLabels(app)
	l[LabelColor] = color
	return l
}
