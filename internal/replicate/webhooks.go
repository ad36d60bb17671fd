package replicate

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/internal/plan"
)

// WebhookRulesAnnotation keeps, on a parked webhook configuration, the
// rules of each of its webhooks by name, so promotion can restore them.
const WebhookRulesAnnotation = "tandem.dev/source-webhook-rules"

// webhookKinds are parked with the workloads. A copied webhook whose
// backend is parked (replicas 0) runs nowhere, and with failurePolicy Fail
// (the default) its API server refuses every write the webhook matches:
// Tandem's own applies and the promotion's patches among them. A parked
// configuration keeps its webhooks without their rules, and a webhook
// without rules matches no request.
var webhookKinds = []schema.GroupVersionKind{
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"},
}

// IsWebhookConfiguration says whether obj is a validating or mutating
// webhook configuration, parked and restored with the workloads.
func IsWebhookConfiguration(obj *unstructured.Unstructured) bool {
	gk := obj.GroupVersionKind().GroupKind()
	for _, k := range webhookKinds {
		if k.GroupKind() == gk {
			return true
		}
	}
	return false
}

// parkWebhooks removes the rules of obj's webhooks in place, adding each
// one's rules to WebhookRulesAnnotation. A webhook already without rules
// keeps what the annotation holds for it, so parking twice (or parking a
// copy of a parked source) loses nothing; a webhook given rules while
// parked has its new rules recorded. It reports whether obj changed.
func parkWebhooks(obj *unstructured.Unstructured) (bool, error) {
	saved, err := savedWebhookRules(obj)
	if err != nil {
		return false, err
	}
	hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
	changed := false
	for _, h := range hooks {
		m, ok := h.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		rules, has := m["rules"].([]any)
		if !has || len(rules) == 0 {
			delete(m, "rules")
			continue
		}
		saved[name] = rules
		delete(m, "rules")
		changed = true
	}
	if !changed {
		return false, nil
	}
	if err := unstructured.SetNestedSlice(obj.Object, hooks, "webhooks"); err != nil {
		return false, err
	}
	data, err := json.Marshal(saved)
	if err != nil {
		return false, err
	}
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[WebhookRulesAnnotation] = string(data)
	obj.SetAnnotations(ann)
	return true, nil
}

// unparkWebhooks gives obj's webhooks back the rules parkWebhooks
// recorded and drops the annotation. A configuration without it was never
// parked and is left alone; a webhook given rules while parked keeps them.
func unparkWebhooks(obj *unstructured.Unstructured) (bool, error) {
	if _, parked := obj.GetAnnotations()[WebhookRulesAnnotation]; !parked {
		return false, nil
	}
	saved, err := savedWebhookRules(obj)
	if err != nil {
		return false, err
	}
	hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
	for _, h := range hooks {
		m, ok := h.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		if rules, has := m["rules"].([]any); (!has || len(rules) == 0) && saved[name] != nil {
			m["rules"] = saved[name]
		}
	}
	if err := unstructured.SetNestedSlice(obj.Object, hooks, "webhooks"); err != nil {
		return false, err
	}
	ann := obj.GetAnnotations()
	delete(ann, WebhookRulesAnnotation)
	setOrClear(obj.SetAnnotations, ann)
	return true, nil
}

// savedWebhookRules reads WebhookRulesAnnotation; a value that is not the
// JSON parkWebhooks writes is an error naming the object, so nothing is
// restored from a guess.
func savedWebhookRules(obj *unstructured.Unstructured) (map[string][]any, error) {
	saved := map[string][]any{}
	v, ok := obj.GetAnnotations()[WebhookRulesAnnotation]
	if !ok {
		return saved, nil
	}
	if err := json.Unmarshal([]byte(v), &saved); err != nil {
		return nil, fmt.Errorf("%s: annotation %s is not a map of webhook names to rules: %w", plan.RefOf(obj), WebhookRulesAnnotation, err)
	}
	return saved, nil
}

// patchWebhooks writes the webhooks and the annotation of want (obj after
// parkWebhooks or unparkWebhooks) to obj. A merge patch replaces the whole
// list, so it carries obj's resourceVersion: a configuration changed since
// it was read fails with a conflict rather than losing that change.
func patchWebhooks(ctx context.Context, c client.Writer, obj, want *unstructured.Unstructured) error {
	hooks, _, _ := unstructured.NestedSlice(want.Object, "webhooks")
	var ann any
	if v, ok := want.GetAnnotations()[WebhookRulesAnnotation]; ok {
		ann = v
	}
	return mergePatch(ctx, c, obj, map[string]any{
		"metadata": map[string]any{
			"resourceVersion": obj.GetResourceVersion(),
			"annotations":     map[string]any{WebhookRulesAnnotation: ann},
		},
		"webhooks": hooks,
	})
}
