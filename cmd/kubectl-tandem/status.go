package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

func newStatusCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "status [PAIR]",
		Short: "Show a pair as this cluster sees it: roles, epoch, peer, sync, drills, conditions",
		Long: "Show the HAPairs of the namespace (or one) as the cluster the kubeconfig points at sees them.\n" +
			"Each data center has its own view; run it against both to compare.",
		Example: `  kubectl tandem status -n shop
  kubectl tandem status shop -n shop -o yaml
  kubectl tandem status shop -n shop -o jsonpath='{.status.activeCluster}'`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeNames[tandemv1.HAPairList](flags, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, ns, err := newClient(flags)
			if err != nil {
				return err
			}
			var pairs []tandemv1.HAPair
			if len(args) == 1 {
				var p tandemv1.HAPair
				if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, &p); err != nil {
					return fmt.Errorf("reading HAPair %s/%s: %w", ns, args[0], err)
				}
				pairs = append(pairs, p)
			} else {
				var list tandemv1.HAPairList
				if err := c.List(cmd.Context(), &list, client.InNamespace(ns)); err != nil {
					return fmt.Errorf("listing HAPairs in %s: %w", ns, err)
				}
				if len(list.Items) == 0 {
					return fmt.Errorf("no HAPair in namespace %s", ns)
				}
				pairs = list.Items
			}
			if !out.table() {
				objs := make([]client.Object, len(pairs))
				for i := range pairs {
					objs[i] = &pairs[i]
				}
				return out.print(streams.Out, objs...)
			}
			for i := range pairs {
				if i > 0 {
					fmt.Fprintln(streams.Out)
				}
				printStatus(streams.Out, &pairs[i])
			}
			return nil
		},
	}
	out = addOutputFlags(cmd)
	return cmd
}

// printStatus prints one pair in a fixed layout: the summary lines, then
// the conditions. Times are absolute (RFC 3339) so the output can be
// compared and pasted into an incident report.
func printStatus(out io.Writer, p *tandemv1.HAPair) {
	st := p.Status
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "HAPair\t%s/%s\n", p.Namespace, p.Name)
	fmt.Fprintf(w, "Roles\t%s active, %s standby, epoch %d; this cluster is %s\n", dash(st.ActiveCluster), dash(st.StandbyCluster), st.Epoch, dash(string(st.LocalRole)))
	if pe := st.Peer; pe != nil {
		state := "reachable"
		if !pe.Reachable {
			state = fmt.Sprintf("NOT reachable, %d failed rounds", pe.ConsecutiveFailures)
		}
		fmt.Fprintf(w, "Peer\t%s %s, last answered %s\n", pe.Cluster, state, ts(pe.LastSuccessTime))
	}
	if wi := st.Witness; wi != nil {
		fmt.Fprintf(w, "Witness\t%s\n", dash(wi.Message))
	}
	if sy := st.Sync; sy != nil {
		lag := "-"
		if sy.Lag != nil {
			lag = sy.Lag.Duration.String()
		}
		fmt.Fprintf(w, "Sync\t%d selected, %d in sync, %d out of sync, %d failed; lag %s; last full sync %s\n",
			sy.Selected, sy.InSync, sy.OutOfSync, sy.Failed, lag, ts(sy.LastFullSync))
	}
	v := st.Volumes
	rpo := "no volume protection (no SyncPolicy of the pair sets spec.volumes)"
	switch {
	case v != nil && v.CurrentRPO != nil:
		rpo = fmt.Sprintf("%s, the worst of %d protected PVCs", v.CurrentRPO.Duration, v.ProtectedPVCs)
	case v != nil && st.LocalRole == tandemv1.RoleActive && v.ProtectedPVCs == 0:
		rpo = "not measured yet"
	case v != nil && st.LocalRole == tandemv1.RoleActive:
		rpo = fmt.Sprintf("not every one of %d protected PVCs has a snapshot usable on the standby yet", v.ProtectedPVCs)
	case v != nil:
		rpo = "measured by the active side (kubectl tandem status there)"
	}
	if o := p.Spec.Objectives; o != nil && o.RPO != nil {
		rpo += "; objective " + o.RPO.Duration.String()
	}
	fmt.Fprintf(w, "RPO\t%s\n", rpo)
	if v != nil && len(v.Kept) > 0 {
		fmt.Fprintf(w, "Kept snapshots\t%d of retired PVCs on this cluster, newest %s/%s (of PVC %s)\n",
			len(v.Kept), v.Kept[0].Namespace, v.Kept[0].Name, v.Kept[0].Claim)
	}
	if tr := st.Traffic; tr != nil {
		for _, rec := range tr.Records {
			where := "answers " + dash(rec.Cluster) + "'s targets"
			if rec.Cluster == "" {
				where = dash(rec.Message)
			}
			fmt.Fprintf(w, "DNS\t%s: %s [%s], seen %s\n", rec.Name, where, strings.Join(rec.Answer, ","), ts(rec.ObservedTime))
		}
	}
	fmt.Fprintf(w, "Last switchover\t%s\n", summary(st.LastSwitchover))
	fmt.Fprintf(w, "Last drill\t%s\n", summary(st.LastDrill))
	next := "-"
	if st.NextDrill != nil {
		next = ts(st.NextDrill)
	} else if p.Spec.Drills != nil {
		next = "scheduled by the active side"
	}
	fmt.Fprintf(w, "Next drill\t%s\n", next)
	_ = w.Flush()

	fmt.Fprintln(out)
	cw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(cw, "CONDITION\tSTATUS\tREASON\tMESSAGE")
	for _, c := range st.Conditions {
		fmt.Fprintf(cw, "%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, oneLine(c.Message))
	}
	_ = cw.Flush()
}

func summary(s *tandemv1.SwitchoverSummary) string {
	if s == nil {
		return "-"
	}
	out := fmt.Sprintf("%s (%s) %s", s.Name, s.Type, s.Phase)
	if s.RTO != nil {
		out += ", RTO " + s.RTO.Duration.String()
	}
	if s.CompletionTime != nil {
		out += ", " + s.CompletionTime.UTC().Format(time.RFC3339)
	}
	return out
}

func ts(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
