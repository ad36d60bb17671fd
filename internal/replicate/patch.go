package replicate

import (
	"encoding/json"
	"fmt"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Bounds on a policy's JSON patches (spec.transforms.patches). A patch is
// a user's input applied to every object it matches on every pass; left
// unbounded, 3 KB of copy operations grew one object to 66 MB in 2 s.
const (
	// MaxPatchOperations is the most operations one patch may have.
	MaxPatchOperations = 100
	// MaxPatchCopyBytes bounds what a patch's copy operations may add to
	// one object, in all.
	MaxPatchCopyBytes = 256 << 10
	// MaxPatchedObjectBytes is the largest object a patch may produce: an
	// API server refuses larger ones anyway (etcd's 1.5 MiB request
	// limit), so it would never be copied.
	MaxPatchedObjectBytes = 1536 << 10
)

// CheckPatch decodes a policy's JSON patch and checks it against the
// bounds: at most MaxPatchOperations operations, none of them
// writing (or moving away) what the sync or the API server owns: the
// object's kind, apiVersion and metadata other than labels and
// annotations, and Tandem's own tandem.dev/ labels and annotations. A
// patch may read anything (copy from, test).
func CheckPatch(doc string) (jsonpatch.Patch, error) {
	p, err := jsonpatch.DecodePatch([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("not an RFC 6902 JSON patch: %w", err)
	}
	if len(p) > MaxPatchOperations {
		return nil, fmt.Errorf("%d operations, more than the %d a patch may have", len(p), MaxPatchOperations)
	}
	for i, op := range p {
		// DecodePatch has refused unknown operations.
		kind := op.Kind()
		path, err := op.Path()
		if err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
		written := []string{path}
		if kind == "move" {
			from, err := op.From()
			if err != nil {
				return nil, fmt.Errorf("operation %d: %w", i, err)
			}
			written = append(written, from)
		}
		if kind == "test" {
			continue
		}
		for _, w := range written {
			if why := ownedPath(w); why != "" {
				return nil, fmt.Errorf("operation %d (%s %q): %s", i, kind, w, why)
			}
		}
	}
	return p, nil
}

// ownedPath says why a patch may not write at the JSON pointer path; ""
// when it may.
func ownedPath(path string) string {
	if path == "" || path == "/" {
		return "the whole object is the sync's"
	}
	if !strings.HasPrefix(path, "/") {
		return "not a JSON pointer (it starts with /)"
	}
	seg := strings.Split(path[1:], "/")
	switch seg[0] {
	case "apiVersion", "kind":
		return seg[0] + " is the sync's"
	case "metadata":
		if len(seg) < 3 || (seg[1] != "labels" && seg[1] != "annotations") {
			return "metadata is the sync's and the API server's, apart from single labels and annotations"
		}
		// RFC 6901: ~1 is a slash, ~0 a tilde.
		key := strings.NewReplacer("~1", "/", "~0", "~").Replace(seg[2])
		if strings.HasPrefix(key, "tandem.dev/") {
			return "tandem.dev/ labels and annotations are Tandem's"
		}
	}
	return ""
}

// applyJSONPatch applies a checked patch within the bounds.
func applyJSONPatch(obj *unstructured.Unstructured, doc string) (*unstructured.Unstructured, error) {
	p, err := CheckPatch(doc)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	opts := jsonpatch.NewApplyOptions()
	opts.AccumulatedCopySizeLimit = MaxPatchCopyBytes
	out, err := p.ApplyWithOptions(data, opts)
	if err != nil {
		return nil, fmt.Errorf("applying the JSON patch: %w", err)
	}
	if len(out) > MaxPatchedObjectBytes {
		return nil, fmt.Errorf("the patched object is %d bytes, more than the %d an object may be", len(out), MaxPatchedObjectBytes)
	}
	patched := &unstructured.Unstructured{}
	if err := json.Unmarshal(out, &patched.Object); err != nil {
		return nil, err
	}
	return patched, nil
}
