package replicate

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The cache keeps of managedFields only the newest write time: what
// lastChanged reads, without the field sets.
func TestSlimKeepsTheNewestWriteOnly(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	older, newer := metav1.NewTime(created.Add(time.Minute)), metav1.NewTime(created.Add(time.Hour))
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetCreationTimestamp(created)
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, Time: &newer, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{"f:a":{}}}`)}},
		{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate, Time: &older, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{"f:b":{}}}`)}},
	})
	want := lastChanged(u)
	out, err := slim(u)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*unstructured.Unstructured)
	if got := lastChanged(s); !got.Equal(want) || !got.Equal(newer.Time) {
		t.Fatalf("lastChanged after slim = %s, want %s", got, want)
	}
	if mfs := s.GetManagedFields(); len(mfs) != 1 || mfs[0].FieldsV1 != nil {
		t.Fatalf("managedFields after slim = %+v, want one entry without field sets", mfs)
	}
	if _, err := slim("not an object"); err != nil {
		t.Fatal(err)
	}
}
