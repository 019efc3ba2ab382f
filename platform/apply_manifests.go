package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/tsys-group/tsys-ci/internal/contract"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// ObjectApplier applies plain objects (server-side apply) and reports how
// many changed. Apply uses it for what is not a chart: namespaces with
// their Pod Security labels before MetalLB, and MetalLB's pools and L2
// advertisements once MetalLB's CRDs exist.
type ObjectApplier func(ctx context.Context, objs []map[string]any) (changed int, err error)

// ServerSideApply returns an ObjectApplier for a cluster.
func ServerSideApply(cfg *rest.Config) (ObjectApplier, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	return func(ctx context.Context, objs []map[string]any) (int, error) {
		// CRDs installed by the previous chart must be visible.
		cached.Invalidate()
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
		changed := 0
		for _, o := range objs {
			u := &unstructured.Unstructured{Object: o}
			gvk := u.GroupVersionKind()
			what := fmt.Sprintf("%s %s/%s", gvk.Kind, u.GetNamespace(), u.GetName())
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return changed, fmt.Errorf("applying %s: %w (is the chart that defines it installed?)", what, err)
			}
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
			}
			before := ""
			cur, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
			switch {
			case err == nil && hasFields(cur.Object, o):
				continue // already as wanted: writing would only churn managedFields
			case err == nil:
				before = cur.GetResourceVersion()
			case !apierrors.IsNotFound(err):
				return changed, fmt.Errorf("reading %s: %w", what, err)
			}
			body, err := u.MarshalJSON()
			if err != nil {
				return changed, fmt.Errorf("encoding %s: %w", what, err)
			}
			force := true
			after, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: contract.FieldManager, Force: &force})
			if err != nil {
				return changed, fmt.Errorf("applying %s: %w", what, err)
			}
			if after.GetResourceVersion() != before {
				changed++
			}
		}
		return changed, nil
	}, nil
}

// applyAfter applies the objects that follow a component's chart: the
// PodDisruptionBudgets render adds for it (manifests/component-pdbs.yaml);
// after MetalLB (they need its CRDs, and the promote pool its addresses),
// its pools and L2 advertisements, then promote's pool ConfigMap.
func (o *HelmOptions) applyAfter(spec *Spec, component string) error {
	if pdbs := componentPDBs(spec, component); len(pdbs) > 0 {
		if err := o.applyObjects(component+"'s PodDisruptionBudgets", pdbs); err != nil {
			return err
		}
	}
	if component != "metallb" {
		return nil
	}
	if err := o.applyObjects("MetalLB pools and L2 advertisements", metallbPools(spec)); err != nil {
		return err
	}
	if err := o.applyObjects("promote pool ConfigMap "+PromotePoolNamespace+"/"+PromotePoolName, promotePoolObjects(spec)); err != nil {
		return err
	}
	return o.applyGateway(spec)
}

// applyGateway applies the gateway's HelmChartConfig (manifests/gateway.yaml)
// in its place in the order: after MetalLB's pools, which give Traefik's
// LoadBalancer Service its address, before the components that log in. It
// is a manifest, not a Helm release of apply's: k3s's helm controller
// upgrades Traefik when it changes (its Job helm-install-traefik in
// kube-system shows how that went), so plan lists no step for it and a
// failed Traefik upgrade is not rolled back by apply.
func (o *HelmOptions) applyGateway(spec *Spec) error {
	return o.applyObjects("gateway HelmChartConfig "+GatewayNamespace+"/"+GatewayChartConfig, gatewayObjects(spec))
}

func (o *HelmOptions) applyObjects(what string, objs []obj) error {
	if len(objs) == 0 {
		return nil
	}
	if o.ApplyObjects == nil {
		fmt.Fprintf(o.Progress, "    %s: not applied (no cluster connection for plain objects); apply them from `platform render`\n", what)
		return nil
	}
	plain := make([]map[string]any, len(objs))
	copy(plain, objs)
	changed, err := o.ApplyObjects(o.ctx(), plain)
	if err != nil {
		return fmt.Errorf("applying %s: %w", what, err)
	}
	fmt.Fprintf(o.Progress, "    %s: %d of %d changed\n", what, changed, len(objs))
	return nil
}

// hasFields reports whether live already holds every field of want (maps
// compared key by key, everything else by value as JSON sees it).
func hasFields(live, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !hasFields(l[k], v) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(jsonNormal(live), jsonNormal(want))
	}
}

func jsonNormal(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}
