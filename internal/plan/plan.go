package plan

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Input is what a plan is built from.
type Input struct {
	// Objects selected on the active cluster.
	Objects []*unstructured.Unstructured
	// Extra are the SyncPolicy's extraDependencies.
	Extra []tandemv1.DependencyEdge
	// CRDs names, by "Kind.group", the CustomResourceDefinition of each
	// custom kind on the active cluster, so that a custom resource whose
	// CRD is not selected shows as a missing dependency.
	CRDs map[string]string
}

// Plan is the dependency-ordered sync plan.
type Plan struct {
	// Waves of objects; every dependency of an object in wave i is in a wave
	// before i. Objects within a wave are sorted by Ref.String(), so the same
	// input always gives the same plan.
	Waves [][]*unstructured.Unstructured
	// Edges between selected objects, sorted.
	Edges []Edge
	// Missing are edges to objects that are not selected. They are not
	// fatal: the dependency may exist on the standby already (a Namespace
	// created by hand, a StorageClass of the platform), so the dependent
	// object is still planned.
	Missing []Edge
	// Cycles are sets of objects that depend on each other. None of them is
	// in a wave.
	Cycles [][]Ref
	// Blocked objects depend, directly or not, on an object in a cycle and
	// are not in a wave either.
	Blocked []Ref
	// Invalid are objects whose dependency annotation could not be parsed;
	// they are planned without it.
	Invalid []error
}

// Len is the number of objects in the waves.
func (p *Plan) Len() int {
	n := 0
	for _, w := range p.Waves {
		n += len(w)
	}
	return n
}

// Build builds the plan.
func Build(in Input) *Plan {
	p := &Plan{}
	nodes := make(map[Ref]*unstructured.Unstructured, len(in.Objects))
	// byKindName resolves references whose kind is lower-cased (the
	// annotation) or whose namespace may be wrong for a cluster-scoped kind.
	byLowerKind := map[string][]Ref{}
	var pdbs, workloads []*unstructured.Unstructured
	crdByGroupKind := map[string]Ref{}
	for _, obj := range in.Objects {
		r := RefOf(obj)
		nodes[r] = obj
		byLowerKind[strings.ToLower(r.Kind)+"."+r.Group] = append(byLowerKind[strings.ToLower(r.Kind)+"."+r.Group], r)
		switch {
		case r.Group == "policy" && r.Kind == "PodDisruptionBudget":
			pdbs = append(pdbs, obj)
		case r.Group == "apiextensions.k8s.io" && r.Kind == "CustomResourceDefinition":
			group := str(obj.Object, "spec", "group")
			kind := str(obj.Object, "spec", "names", "kind")
			crdByGroupKind[kind+"."+group] = r
		}
		if len(PodSpecs(obj)) > 0 {
			workloads = append(workloads, obj)
		}
	}

	var edges []Edge
	for _, obj := range in.Objects {
		edges = append(edges, refsOf(obj)...)
		from := RefOf(obj)
		if crd, ok := crdByGroupKind[from.Kind+"."+from.Group]; ok {
			edges = append(edges, Edge{From: from, To: crd, Reason: ReasonCRD})
		} else if name, ok := in.CRDs[from.Kind+"."+from.Group]; ok {
			// Not selected: missing, and the resource fails unless the
			// standby serves its kind already.
			edges = append(edges, Edge{From: from, To: Ref{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: name}, Reason: ReasonCRD})
		}
		if v, ok := obj.GetAnnotations()[DependsOnAnnotation]; ok {
			refs, err := parseDependsOn(v, obj.GetNamespace())
			if err != nil {
				p.Invalid = append(p.Invalid, fmt.Errorf("%s: annotation %s: %w", from, DependsOnAnnotation, err))
			}
			for _, to := range refs {
				edges = append(edges, Edge{From: from, To: resolveLower(to, byLowerKind), Reason: ReasonAnnotation})
			}
		}
	}
	edges = append(edges, pdbEdges(pdbs, workloads)...)
	edges = append(edges, extraEdges(in.Extra, in.Objects)...)

	// Keep edges between selected objects, once each. References by name
	// default to the referrer's namespace; a cluster-scoped target (a
	// ClusterRole, a StorageClass) is found without it.
	deps := map[Ref]map[Ref]bool{}
	seen := map[Edge]bool{}
	for _, e := range edges {
		if _, ok := nodes[e.To]; !ok {
			if alt := (Ref{Group: e.To.Group, Kind: e.To.Kind, Name: e.To.Name}); e.To.Namespace != "" {
				if _, ok := nodes[alt]; ok {
					e.To = alt
				}
			}
		}
		if e.From == e.To || seen[e] {
			continue
		}
		seen[e] = true
		if _, ok := nodes[e.To]; !ok {
			p.Missing = append(p.Missing, e)
			continue
		}
		p.Edges = append(p.Edges, e)
		if deps[e.From] == nil {
			deps[e.From] = map[Ref]bool{}
		}
		deps[e.From][e.To] = true
	}
	sortEdges(p.Edges)
	sortEdges(p.Missing)

	p.Waves, p.Cycles, p.Blocked = layer(nodes, deps)
	return p
}

// layer sorts the graph into waves (Kahn's algorithm, level by level) and
// reports what is left: strongly connected components with more than one
// object are cycles, everything else left depends on a cycle.
func layer(nodes map[Ref]*unstructured.Unstructured, deps map[Ref]map[Ref]bool) ([][]*unstructured.Unstructured, [][]Ref, []Ref) {
	remaining := make(map[Ref]int, len(nodes))
	dependents := map[Ref][]Ref{}
	for r := range nodes {
		remaining[r] = len(deps[r])
		for d := range deps[r] {
			dependents[d] = append(dependents[d], r)
		}
	}
	var ready []Ref
	for r, n := range remaining {
		if n == 0 {
			ready = append(ready, r)
		}
	}
	var waves [][]*unstructured.Unstructured
	placed := 0
	for len(ready) > 0 {
		sortRefs(ready)
		wave := make([]*unstructured.Unstructured, len(ready))
		var next []Ref
		for i, r := range ready {
			wave[i] = nodes[r]
			delete(remaining, r)
			for _, d := range dependents[r] {
				remaining[d]--
				if remaining[d] == 0 {
					next = append(next, d)
				}
			}
		}
		placed += len(ready)
		waves = append(waves, wave)
		ready = next
	}
	if placed == len(nodes) {
		return waves, nil, nil
	}

	left := make([]Ref, 0, len(remaining))
	for r := range remaining {
		left = append(left, r)
	}
	sortRefs(left)
	var cycles [][]Ref
	onCycle := map[Ref]bool{}
	for _, scc := range tarjan(left, deps, remaining) {
		if len(scc) > 1 {
			sortRefs(scc)
			cycles = append(cycles, scc)
			for _, r := range scc {
				onCycle[r] = true
			}
		}
	}
	sort.Slice(cycles, func(i, j int) bool { return cycles[i][0].String() < cycles[j][0].String() })
	var blocked []Ref
	for _, r := range left {
		if !onCycle[r] {
			blocked = append(blocked, r)
		}
	}
	return waves, cycles, blocked
}

// tarjan returns the strongly connected components of the subgraph of the
// given refs.
func tarjan(refs []Ref, deps map[Ref]map[Ref]bool, in map[Ref]int) [][]Ref {
	index := map[Ref]int{}
	low := map[Ref]int{}
	onStack := map[Ref]bool{}
	var stack []Ref
	var out [][]Ref
	next := 0
	var visit func(r Ref)
	visit = func(r Ref) {
		index[r], low[r] = next, next
		next++
		stack = append(stack, r)
		onStack[r] = true
		targets := make([]Ref, 0, len(deps[r]))
		for d := range deps[r] {
			if _, ok := in[d]; ok {
				targets = append(targets, d)
			}
		}
		sortRefs(targets)
		for _, d := range targets {
			if _, seen := index[d]; !seen {
				visit(d)
				low[r] = min(low[r], low[d])
			} else if onStack[d] {
				low[r] = min(low[r], index[d])
			}
		}
		if low[r] == index[r] {
			var scc []Ref
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[top] = false
				scc = append(scc, top)
				if top == r {
					break
				}
			}
			out = append(out, scc)
		}
	}
	for _, r := range refs {
		if _, seen := index[r]; !seen {
			visit(r)
		}
	}
	return out
}

// resolveLower finds the selected object an annotation reference means:
// kinds in the annotation are lower-case, and the namespace is dropped for
// cluster-scoped targets.
func resolveLower(to Ref, byLowerKind map[string][]Ref) Ref {
	candidates := byLowerKind[to.Kind+"."+to.Group]
	for _, c := range candidates {
		if c.Name == to.Name && c.Namespace == to.Namespace {
			return c
		}
	}
	for _, c := range candidates {
		if c.Name == to.Name && c.Namespace == "" {
			return c
		}
	}
	return to
}

// extraEdges expands the policy's extra dependencies: every selected object
// matching From depends on every selected object matching To.
func extraEdges(extra []tandemv1.DependencyEdge, objs []*unstructured.Unstructured) []Edge {
	var out []Edge
	for _, x := range extra {
		var froms, tos []Ref
		for _, obj := range objs {
			r := RefOf(obj)
			if Matches(x.From, r) {
				froms = append(froms, r)
			}
			if Matches(x.To, r) {
				tos = append(tos, r)
			}
		}
		for _, f := range froms {
			for _, t := range tos {
				out = append(out, Edge{From: f, To: t, Reason: ReasonPolicy})
			}
		}
	}
	return out
}

// Matches reports whether a SyncPolicy object target selects r.
func Matches(t tandemv1.ObjectTarget, r Ref) bool {
	return t.Group == r.Group && t.Kind == r.Kind &&
		(t.Namespace == "" || t.Namespace == r.Namespace) &&
		(t.Name == "" || t.Name == r.Name)
}

func sortRefs(refs []Ref) {
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
}

func sortEdges(edges []Edge) {
	sort.Slice(edges, func(i, j int) bool {
		if a, b := edges[i].From.String(), edges[j].From.String(); a != b {
			return a < b
		}
		if a, b := edges[i].To.String(), edges[j].To.String(); a != b {
			return a < b
		}
		return edges[i].Reason < edges[j].Reason
	})
}

// CycleMessage names the objects on each cycle, for a condition message.
func (p *Plan) CycleMessage() string {
	var parts []string
	for _, c := range p.Cycles {
		names := make([]string, len(c))
		for i, r := range c {
			names[i] = r.String()
		}
		parts = append(parts, "cycle between "+strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
}

// Dependencies are the objects obj must wait for by the rules that need
// only the object itself (everything but disruption budgets, CRDs and the
// policy's extra edges, which need the whole selection). A reference by name
// carries obj's namespace even when its kind is cluster-scoped; callers look
// it up without the namespace when it is not found.
func Dependencies(obj *unstructured.Unstructured) []Ref {
	var out []Ref
	for _, e := range refsOf(obj) {
		out = append(out, e.To)
	}
	if v, ok := obj.GetAnnotations()[DependsOnAnnotation]; ok {
		refs, _ := parseDependsOn(v, obj.GetNamespace())
		out = append(out, refs...)
	}
	return out
}
