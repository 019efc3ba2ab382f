package rollout

// Allocation is an app's place on the load-balancer pool: one address and
// one port per exposed port name. It is stable for the life of the app.
type Allocation struct {
	Address string           `json:"address"`
	Ports   map[string]int32 `json:"ports"`
}
