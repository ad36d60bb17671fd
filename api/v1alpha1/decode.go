package v1alpha1

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

// Objects that do not decode.
//
// A stored HAPair, SyncPolicy or Switchover whose body does not decode into
// its Go type (a value an older schema let through, or one written below
// admission) would fail the decoding of every list it is in: the informer
// would never sync, and on that cluster no pair would be probed, renewed or
// fenced. So the three kinds decode tolerantly: such an object keeps its
// kind, metadata and (when it decodes) status, its spec stays empty, and
// Undecodable says which field did not decode and why. The controllers report it on the
// object itself and act on nothing it says.

// DecodeError says why a stored object did not decode. It is never stored.
//
// +kubebuilder:object:generate=false
type DecodeError struct {
	// Field is the path of a value that did not decode
	// ("spec.traffic.verifyTimeout"); empty when it could not be found.
	Field string
	// Cause is the decoder's message.
	Cause string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "the stored object cannot be decoded: " + e.Cause
	}
	return e.Field + " cannot be decoded: " + e.Cause
}

// maxCause bounds the decoder's message: it may quote the stored value.
const maxCause = 256

// header is what every stored object decodes into.
type header struct {
	metav1.TypeMeta `json:",inline"`
	ObjectMeta      metav1.ObjectMeta `json:"metadata,omitempty"`
	// Status is decoded apart: the operator wrote it, so it usually
	// decodes, and the role record in it stays readable.
	Status json.RawMessage `json:"status,omitempty"`
}

// decodeStatus decodes a status kept apart; one that does not decode stays
// empty.
func decodeStatus[T any](raw json.RawMessage, into *T) {
	var v T
	if len(raw) > 0 && kjson.UnmarshalCaseSensitivePreserveInts(raw, &v) == nil {
		*into = v
	}
}

// decodeTolerantly decodes data into into, as the API machinery's JSON
// serializer does (case-sensitive, integers kept). When the body does not
// decode but the metadata does, it calls keep with the metadata and the
// reason, and returns no error.
func decodeTolerantly(data []byte, into any, keep func(header, *DecodeError)) error {
	err := kjson.UnmarshalCaseSensitivePreserveInts(data, into)
	if err == nil {
		return nil
	}
	var h header
	if kjson.UnmarshalCaseSensitivePreserveInts(data, &h) != nil {
		return err
	}
	cause := err.Error()
	if len(cause) > maxCause {
		cause = cause[:maxCause] + "…"
	}
	keep(h, &DecodeError{Field: locate(data, into), Cause: cause})
	return nil
}

// locateBudget bounds the decodes locate tries: an object with long lists
// would otherwise cost one decode per element on every informer event.
const locateBudget = 200

// locate finds a value that stops data from decoding into a value like
// into: it removes fields until the rest decodes, and then looks inside the
// last one removed. Only a failed decode pays for this; past the budget it
// names the path found so far.
func locate(data []byte, into any) string {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return ""
	}
	budget := locateBudget
	decodes := func() bool {
		if budget--; budget < 0 {
			return false
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return false
		}
		// A fresh value of into's type each time: a failed decode leaves
		// a value half filled.
		fresh := reflect.New(reflect.TypeOf(into).Elem()).Interface()
		return kjson.UnmarshalCaseSensitivePreserveInts(b, fresh) == nil
	}
	var path strings.Builder
	for node := doc; ; {
		next, step := narrow(node, decodes)
		if step == "" {
			break
		}
		if path.Len() > 0 && !strings.HasPrefix(step, "[") {
			path.WriteByte('.')
		}
		path.WriteString(step)
		node = next
	}
	return path.String()
}

// narrow removes node's children one by one until the document decodes,
// puts the last one back and returns it with its name; "" when removing
// none of them helps (node itself is the culprit).
func narrow(node any, decodes func() bool) (any, string) {
	switch n := node.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(n)) {
			child := n[k]
			delete(n, k)
			if decodes() {
				n[k] = child
				return child, k
			}
		}
	case []any:
		for i, child := range n {
			// null decodes into any element type.
			n[i] = nil
			if decodes() {
				n[i] = child
				return child, fmt.Sprintf("[%d]", i)
			}
		}
	}
	return nil, ""
}

// The plain types decode without the tolerant UnmarshalJSON methods.
type (
	plainHAPair     HAPair
	plainSyncPolicy SyncPolicy
	plainSwitchover Switchover
)

// UnmarshalJSON decodes an HAPair; one whose body does not decode keeps
// its metadata and reports the field in Undecodable.
func (in *HAPair) UnmarshalJSON(data []byte) error {
	// in may hold an object decoded before.
	in.undecodable = nil
	return decodeTolerantly(data, (*plainHAPair)(in), func(h header, e *DecodeError) {
		*in = HAPair{TypeMeta: h.TypeMeta, ObjectMeta: h.ObjectMeta, undecodable: e}
		decodeStatus(h.Status, &in.Status)
	})
}

// Undecodable says why the stored HAPair did not decode; nil when it did.
func (in *HAPair) Undecodable() *DecodeError { return in.undecodable }

// UnmarshalJSON decodes a SyncPolicy; one whose body does not decode keeps
// its metadata and reports the field in Undecodable.
func (in *SyncPolicy) UnmarshalJSON(data []byte) error {
	// in may hold an object decoded before.
	in.undecodable = nil
	return decodeTolerantly(data, (*plainSyncPolicy)(in), func(h header, e *DecodeError) {
		*in = SyncPolicy{TypeMeta: h.TypeMeta, ObjectMeta: h.ObjectMeta, undecodable: e}
		decodeStatus(h.Status, &in.Status)
	})
}

// Undecodable says why the stored SyncPolicy did not decode; nil when it
// did.
func (in *SyncPolicy) Undecodable() *DecodeError { return in.undecodable }

// UnmarshalJSON decodes a Switchover; one whose body does not decode keeps
// its metadata and reports the field in Undecodable.
func (in *Switchover) UnmarshalJSON(data []byte) error {
	// in may hold an object decoded before.
	in.undecodable = nil
	return decodeTolerantly(data, (*plainSwitchover)(in), func(h header, e *DecodeError) {
		*in = Switchover{TypeMeta: h.TypeMeta, ObjectMeta: h.ObjectMeta, undecodable: e}
		decodeStatus(h.Status, &in.Status)
	})
}

// Undecodable says why the stored Switchover did not decode; nil when it
// did.
func (in *Switchover) Undecodable() *DecodeError { return in.undecodable }
