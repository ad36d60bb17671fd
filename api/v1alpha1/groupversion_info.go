// Package v1alpha1 contains the Tandem API: HAPair, SyncPolicy and Switchover.
//
// +kubebuilder:object:generate=true
// +groupName=tandem.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Tandem kind.
	GroupVersion = schema.GroupVersion{Group: "tandem.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Tandem kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Tandem kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
