package replicate

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

const webhookConfig = `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: guard, labels: {app: shop}}
webhooks:
- name: orders.shop.example.com
  clientConfig: {service: {namespace: shop, name: guard, path: /validate}}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}]
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
- name: quiet.shop.example.com
  clientConfig: {service: {namespace: shop, name: guard, path: /quiet}}
  sideEffects: None
  admissionReviewVersions: [v1]
`

func webhookRules(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	hooks, _, err := unstructured.NestedSlice(u.Object, "webhooks")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, h := range hooks {
		m := h.(map[string]any)
		out[m["name"].(string)] = m["rules"]
	}
	return out
}

func TestWarmCopyOfAWebhookMatchesNothingUntilUnparked(t *testing.T) {
	src := obj(t, webhookConfig)
	want := webhookRules(t, src)

	warm, _, err := Transform(src, Options{Pair: "p", Policy: "s", Mode: tandemv1.StandbyWarm})
	if err != nil {
		t.Fatal(err)
	}
	for name, rules := range webhookRules(t, warm) {
		if rules != nil {
			t.Errorf("warm copy: webhook %s still has rules %v", name, rules)
		}
	}
	if _, ok := warm.GetAnnotations()[WebhookRulesAnnotation]; !ok {
		t.Fatalf("warm copy has no %s annotation", WebhookRulesAnnotation)
	}

	// A parked source (quiesced for a switchover) copies to the same
	// parked copy: the rules it will be restored to travel with it.
	parkedSrc := src.DeepCopy()
	if changed, err := parkWebhooks(parkedSrc); err != nil || !changed {
		t.Fatalf("parking the source: changed %v, %v", changed, err)
	}
	again, _, err := Transform(parkedSrc, Options{Pair: "p", Policy: "s", Mode: tandemv1.StandbyWarm})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Object, warm.Object) {
		t.Errorf("the copy of a parked source differs from the copy of the running one:\n%v\n%v", again.Object, warm.Object)
	}
	if changed, err := parkWebhooks(again); err != nil || changed {
		t.Errorf("parking a parked copy again: changed %v, %v; want no change", changed, err)
	}

	if changed, err := unparkWebhooks(warm); err != nil || !changed {
		t.Fatalf("unparking: changed %v, %v", changed, err)
	}
	if got := webhookRules(t, warm); !reflect.DeepEqual(got, want) {
		t.Errorf("unparked rules = %v, want the source's %v", got, want)
	}
	if _, ok := warm.GetAnnotations()[WebhookRulesAnnotation]; ok {
		t.Errorf("unparked copy keeps %s", WebhookRulesAnnotation)
	}
	if changed, _ := unparkWebhooks(warm); changed {
		t.Error("unparking an unparked configuration changed it")
	}
}

func TestHotCopyOfAWebhookKeepsItsRules(t *testing.T) {
	src := obj(t, webhookConfig)
	hot, _, err := Transform(src, Options{Pair: "p", Policy: "s", Mode: tandemv1.StandbyHot})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := webhookRules(t, hot), webhookRules(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("hot copy rules = %v, want %v: a hot standby runs the backends", got, want)
	}
}

func TestRulesGivenToAParkedWebhookAreKept(t *testing.T) {
	u := obj(t, webhookConfig)
	if _, err := parkWebhooks(u); err != nil {
		t.Fatal(err)
	}
	// Someone gives the parked quiet webhook rules by hand: parking again
	// records them, and unparking restores both.
	hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
	added := []any{map[string]any{"apiGroups": []any{"apps"}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": []any{"deployments"}}}
	hooks[1].(map[string]any)["rules"] = added
	_ = unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
	if changed, err := parkWebhooks(u); err != nil || !changed {
		t.Fatalf("parking again: changed %v, %v", changed, err)
	}
	if _, err := unparkWebhooks(u); err != nil {
		t.Fatal(err)
	}
	got := webhookRules(t, u)
	if got["orders.shop.example.com"] == nil || !reflect.DeepEqual(got["quiet.shop.example.com"], added) {
		t.Errorf("unparked rules = %v; want the orders rules and the ones added while parked", got)
	}
}

func TestAnUnreadableWebhookAnnotationNamesTheObject(t *testing.T) {
	u := obj(t, webhookConfig)
	u.SetAnnotations(map[string]string{WebhookRulesAnnotation: "rules"})
	_, err := unparkWebhooks(u)
	if err == nil || !strings.Contains(err.Error(), "guard") || !strings.Contains(err.Error(), WebhookRulesAnnotation) {
		t.Fatalf("error = %v, want one naming the configuration and the annotation", err)
	}
	if got := webhookRules(t, u)["orders.shop.example.com"]; got == nil {
		t.Error("a failed unpark changed the rules")
	}
}
