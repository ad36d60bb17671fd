package traffic

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// A route is disabled by detaching it from what serves it, so the data
// center's entry point stops answering for it and a global load balancer's
// health check sees only the active side (docs/traffic.md):
//
//   - an Ingress gets spec.ingressClassName ParkedIngressClass, a class no
//     controller serves; its own class is kept in ParkedAnnotation;
//   - an HTTPRoute gets no spec.parentRefs; its own are kept, as JSON, in
//     ParkedAnnotation.
//
// Enabling restores what the annotation kept. The sync parks the standby's
// copies of routes carrying RouteLabel the same way, so it never fights
// the traffic phase over them.
const (
	// RouteLabel marks a route named in spec.traffic.routes; the active
	// side sets it on its routes, and the sync parks labelled copies.
	RouteLabel = "tandem.dev/route"
	// ParkedAnnotation keeps what a disabled route is restored to.
	ParkedAnnotation = "tandem.dev/parked-route"
	// ParkedIngressClass is the class a disabled Ingress names.
	ParkedIngressClass = "tandem-parked"
)

var routeGVKs = map[string]schema.GroupVersionKind{
	"Ingress":   {Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
	"HTTPRoute": {Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
}

// IsRoute says whether a group/kind is one of the route kinds.
func IsRoute(groupKind string) bool {
	return groupKind == "Ingress.networking.k8s.io" || groupKind == "HTTPRoute.gateway.networking.k8s.io"
}

// Park disables the route obj in place; a parked one is left as it is. It
// reports whether it changed obj.
func Park(obj *unstructured.Unstructured) bool {
	ann := obj.GetAnnotations()
	if _, parked := ann[ParkedAnnotation]; parked {
		return false
	}
	if ann == nil {
		ann = map[string]string{}
	}
	switch obj.GetKind() {
	case "Ingress":
		class, _, _ := unstructured.NestedString(obj.Object, "spec", "ingressClassName")
		ann[ParkedAnnotation] = class
		_ = unstructured.SetNestedField(obj.Object, ParkedIngressClass, "spec", "ingressClassName")
	case "HTTPRoute":
		refs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "parentRefs")
		raw, _ := json.Marshal(refs)
		ann[ParkedAnnotation] = string(raw)
		_ = unstructured.SetNestedSlice(obj.Object, []any{}, "spec", "parentRefs")
	default:
		return false
	}
	obj.SetAnnotations(ann)
	return true
}

// Unpark enables a parked route in place and reports whether it changed
// obj.
func Unpark(obj *unstructured.Unstructured) (bool, error) {
	ann := obj.GetAnnotations()
	kept, parked := ann[ParkedAnnotation]
	if !parked {
		return false, nil
	}
	switch obj.GetKind() {
	case "Ingress":
		if kept == "" {
			unstructured.RemoveNestedField(obj.Object, "spec", "ingressClassName")
		} else {
			_ = unstructured.SetNestedField(obj.Object, kept, "spec", "ingressClassName")
		}
	case "HTTPRoute":
		var refs []any
		if err := json.Unmarshal([]byte(kept), &refs); err != nil {
			return false, fmt.Errorf("HTTPRoute %s/%s: annotation %s is not the JSON of its parentRefs: %w", obj.GetNamespace(), obj.GetName(), ParkedAnnotation, err)
		}
		_ = unstructured.SetNestedSlice(obj.Object, refs, "spec", "parentRefs")
	}
	delete(ann, ParkedAnnotation)
	obj.SetAnnotations(ann)
	return true, nil
}

// SetRoutes enables (or disables) the routes on the cluster c reaches and
// marks them with RouteLabel. Routes that do not exist there (not synced
// yet, or a kind the cluster does not serve) are returned in missing.
func SetRoutes(ctx context.Context, c client.Client, routes []tandemv1.RouteRef, enable bool) (changed int, missing []string, err error) {
	for _, ref := range routes {
		gvk, ok := routeGVKs[ref.Kind]
		if !ok {
			return changed, missing, fmt.Errorf("spec.traffic.routes: kind %q is not Ingress or HTTPRoute", ref.Kind)
		}
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gvk)
		if err := c.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, obj); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				missing = append(missing, ref.Kind+" "+ref.Namespace+"/"+ref.Name)
				continue
			}
			return changed, missing, fmt.Errorf("reading %s %s/%s: %w", ref.Kind, ref.Namespace, ref.Name, err)
		}
		before := obj.DeepCopy()
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		differs := labels[RouteLabel] != "true"
		labels[RouteLabel] = "true"
		obj.SetLabels(labels)
		verb := "disabling"
		if enable {
			verb = "enabling"
			unparked, err := Unpark(obj)
			if err != nil {
				return changed, missing, err
			}
			differs = differs || unparked
		} else {
			differs = Park(obj) || differs
		}
		if !differs {
			continue
		}
		if err := c.Patch(ctx, obj, client.MergeFrom(before)); err != nil {
			return changed, missing, fmt.Errorf("%s %s %s/%s: %w", verb, ref.Kind, ref.Namespace, ref.Name, err)
		}
		changed++
	}
	return changed, missing, nil
}
