package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/tsys-group/tsys-ci/internal/contract"
)

// The gateway's resources promote writes for an api: section, in the
// order they are removed: the IngressRoute first, so no route names a
// Middleware that is gone.
var gatewayResources = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{"IngressRoute", schema.GroupVersionResource{Group: TraefikGroup, Version: TraefikVersion, Resource: "ingressroutes"}},
	{"Middleware", schema.GroupVersionResource{Group: TraefikGroup, Version: TraefikVersion, Resource: "middlewares"}},
}

func gatewayResource(kind string) schema.GroupVersionResource {
	for _, r := range gatewayResources {
		if r.kind == kind {
			return r.gvr
		}
	}
	panic("no gateway resource " + kind) // only RenderAPI's kinds reach here
}

// GatewayMissingError: the app spec has an api: section, but the cluster
// serves no Traefik CRDs (ingressroutes.traefik.io, middlewares.traefik.io),
// so there is no gateway to put the API behind.
type GatewayMissingError struct {
	App string
	Err error
}

func (e *GatewayMissingError) Error() string {
	return fmt.Sprintf("app %s has an api: section, but the cluster has no API gateway: Traefik's CRDs (ingressroutes.traefik.io, middlewares.traefik.io) are missing (%v). "+
		"Install the gateway: keep traefik out of k3s.disable, add gateway: to platform.yaml (docs/platform.md, \"API gateway\") and run `tsys-ci platform apply -f platform.yaml`; or remove the api: section", e.App, e.Err)
}

func (e *GatewayMissingError) Unwrap() error { return e.Err }

// gatewayObject is one of the app's gateway objects found in the cluster.
type gatewayObject struct{ kind, name string }

// listGatewayObjects returns the app's IngressRoutes, then its Middlewares
// (found by tsys-ci's labels). served is false when the cluster has no
// Traefik CRDs; err is an error of the API server, with the resource.
func listGatewayObjects(ctx context.Context, dyn dynamic.Interface, namespace, app string) (found []gatewayObject, served bool, err error) {
	sel := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(AppLabels(app)).String()}
	for _, r := range gatewayResources {
		l, err := dyn.Resource(r.gvr).Namespace(namespace).List(ctx, sel)
		if apierrors.IsNotFound(err) {
			return nil, false, err
		}
		if err != nil {
			return nil, true, fmt.Errorf("listing %s's %ss (%s): %w", app, r.kind, r.gvr.GroupResource(), err)
		}
		for _, o := range l.Items {
			found = append(found, gatewayObject{r.kind, o.GetName()})
		}
	}
	return found, true, nil
}

// syncGateway makes the app's gateway objects what the spec's api:
// section says: the Middlewares, then the IngressRoute naming them, applied
// with server-side apply; then the objects of routes (or of an api:
// section) that are gone are deleted, the IngressRoute before the
// Middlewares. On a cluster without Traefik's CRDs a spec without api: has
// nothing to do; one with api: is a *GatewayMissingError.
func (r *run) syncGateway(ctx context.Context) error {
	spec, dyn := r.spec, r.p.Dynamic
	if dyn == nil {
		if spec.API != nil {
			return fmt.Errorf("app %s has an api: section, but this promote has no client for the gateway's objects (Promoter.Dynamic is nil)", spec.Name)
		}
		return nil
	}
	existing, served, err := listGatewayObjects(ctx, dyn, spec.Namespace, spec.Name)
	switch {
	case !served && spec.API != nil:
		return &GatewayMissingError{App: spec.Name, Err: err}
	case !served:
		return nil
	case err != nil && spec.API == nil && apierrors.IsForbidden(err):
		// A promoter not allowed to read Traefik's objects (serve before
		// its chart granted them) and an app without api: — nothing of
		// ours can be there to remove.
		r.logf("not checked for gateway objects of an earlier api: section: %v", err)
		return nil
	case err != nil:
		return err
	}
	var gw *GatewayConfig
	if spec.API != nil {
		if gw, err = r.p.Allocator.Gateway(ctx); err != nil {
			return err
		}
	}
	objs, err := RenderAPI(spec, gw, r.store.Owner())
	if err != nil {
		return err
	}
	want := map[gatewayObject]bool{}
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o}
		if err := applyUnstructured(ctx, dyn, gatewayResource(u.GetKind()), u); err != nil {
			return err
		}
		want[gatewayObject{u.GetKind(), u.GetName()}] = true
	}
	var removed []string
	for _, o := range existing {
		if want[o] {
			continue
		}
		err := dyn.Resource(gatewayResource(o.kind)).Namespace(spec.Namespace).Delete(ctx, o.name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing %s %s/%s, no longer in the api: section: %w", o.kind, spec.Namespace, o.name, err)
		}
		removed = append(removed, o.kind+"/"+o.name)
	}
	switch {
	case spec.API != nil:
		r.logf("gateway: IngressRoute %s with %d route(s) and %d Middleware(s) applied%s", IngressRouteName(spec.Name), len(spec.API.Routes), len(objs)-1, removedNote(removed))
	case len(removed) > 0:
		r.logf("gateway: the api: section is gone; removed %s", strings.Join(removed, ", "))
	}
	return nil
}

func removedNote(removed []string) string {
	if len(removed) == 0 {
		return ""
	}
	return "; removed " + strings.Join(removed, ", ")
}

// applyUnstructured writes obj with server-side apply as tsys-ci, forcing
// ownership of its fields, as Apply does for typed objects.
func applyUnstructured(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) error {
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return fmt.Errorf("encoding %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	_, err = dyn.Resource(gvr).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: contract.FieldManager, Force: ptr(true)})
	if err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// deleteGatewayObjects removes an app's gateway objects for Delete; a
// cluster without Traefik's CRDs has none.
func deleteGatewayObjects(ctx context.Context, dyn dynamic.Interface, namespace, app string, del func(kind, name string, err error) error) error {
	if dyn == nil {
		return nil
	}
	found, served, err := listGatewayObjects(ctx, dyn, namespace, app)
	if !served {
		return nil
	}
	if err != nil {
		return err
	}
	for _, o := range found {
		if err := del(o.kind, o.name, dyn.Resource(gatewayResource(o.kind)).Namespace(namespace).Delete(ctx, o.name, metav1.DeleteOptions{})); err != nil {
			return err
		}
	}
	return nil
}

// checkGateway refuses an app with an api: section the cluster cannot put
// behind its gateway before anything changes: no client for the gateway's
// objects, no Traefik CRDs (a *GatewayMissingError), or routes naming
// groups while the pool names no auth service.
func (p *Promoter) checkGateway(ctx context.Context, spec *AppSpec) error {
	if spec.API == nil {
		return nil
	}
	if p.Dynamic == nil {
		return fmt.Errorf("app %s has an api: section, but this promote has no client for the gateway's objects (Promoter.Dynamic is nil)", spec.Name)
	}
	_, served, err := listGatewayObjects(ctx, p.Dynamic, spec.Namespace, spec.Name)
	if !served {
		return &GatewayMissingError{App: spec.Name, Err: err}
	}
	if err != nil {
		return err
	}
	gw, err := p.Allocator.Gateway(ctx)
	if err != nil {
		return err
	}
	_, err = RenderAPI(spec, gw, nil)
	return err
}
