package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// moveOptions are the flags shared by switchover, failover and drill.
type moveOptions struct {
	name     string
	reason   string
	timeout  time.Duration
	noFollow bool
	// drill only
	mode      string
	holdFor   time.Duration
	checkHTTP []string
}

func newMoveCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams, typ tandemv1.SwitchoverType) *cobra.Command {
	o := &moveOptions{}
	var use, short, long string
	switch typ {
	case tandemv1.SwitchoverPlanned:
		use, short = "switchover PAIR --to CLUSTER", "Move a pair's service to the standby with nothing lost, and follow it"
		long = "Creates a Planned Switchover on the active cluster (the one the kubeconfig points at) and follows its steps until it ends."
	case tandemv1.SwitchoverFailover:
		use, short = "failover PAIR --to CLUSTER", "Promote the standby after the active side was lost, and follow it"
		long = "Creates a Failover Switchover on the cluster it promotes (the one the kubeconfig points at) and follows its steps until it ends.\n" +
			"It fails at once if the active side still answers: use switchover to move a live service."
	case tandemv1.SwitchoverDrill:
		use, short = "drill PAIR --to CLUSTER", "Rehearse a switchover to the standby, and follow it"
		long = "Creates a Drill Switchover on the active cluster and follows it until it ends, then prints its report.\n" +
			"Isolated (default) brings the standby's copy up without touching production; live switches over and back."
	}
	var to string
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames[tandemv1.HAPairList](flags, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("--to is required: the cluster to move the service to")
			}
			c, ns, err := newClient(flags)
			if err != nil {
				return err
			}
			so := &tandemv1.Switchover{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: args[0] + "-" + strings.ToLower(string(typ)) + "-"},
				Spec:       tandemv1.SwitchoverSpec{PairRef: args[0], Type: typ, TargetCluster: to, Reason: o.reason},
			}
			if o.name != "" {
				so.GenerateName, so.Name = "", o.name
			}
			if typ == tandemv1.SwitchoverDrill {
				so.Spec.Drill = &tandemv1.DrillOptions{Mode: tandemv1.DrillIsolated}
				if strings.EqualFold(o.mode, "live") {
					so.Spec.Drill.Mode = tandemv1.DrillLive
					so.Spec.Drill.HoldFor = &metav1.Duration{Duration: o.holdFor}
				}
				for i, url := range o.checkHTTP {
					so.Spec.Drill.Checks = append(so.Spec.Drill.Checks, tandemv1.DrillCheck{
						Name: fmt.Sprintf("http-%d", i+1), HTTP: &tandemv1.HTTPCheck{URL: url}})
				}
			}
			if err := c.Create(cmd.Context(), so); err != nil {
				return fmt.Errorf("creating the Switchover: %w", err)
			}
			fmt.Fprintf(streams.Out, "Switchover %s/%s created: %s of HAPair %s to %s\n", ns, so.Name, typ, args[0], to)
			if o.noFollow {
				return nil
			}
			return follow(cmd.Context(), c, so, streams.Out, o.timeout)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "The cluster to move the service to (required).")
	_ = cmd.RegisterFlagCompletionFunc("to", completeTarget(flags))
	cmd.Flags().StringVar(&o.name, "name", "", "Name of the Switchover (generated when empty).")
	cmd.Flags().StringVar(&o.reason, "reason", "", "Why, recorded in spec.reason.")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 30*time.Minute, "How long to follow before giving up (the Switchover goes on).")
	cmd.Flags().BoolVar(&o.noFollow, "no-follow", false, "Create the Switchover and return.")
	if typ == tandemv1.SwitchoverDrill {
		cmd.Flags().StringVar(&o.mode, "mode", "Isolated", "Isolated or Live.")
		cmd.Flags().DurationVar(&o.holdFor, "hold-for", 5*time.Minute, "In a live drill, how long the standby serves before switching back.")
		cmd.Flags().StringArrayVar(&o.checkHTTP, "check-http", nil, "A check: the operator GETs this URL once the standby's copy is up, and any 2xx passes (repeatable).")
	}
	return cmd
}

// follow prints each step as it changes until the Switchover ends, then the
// report. It watches the Switchover (re-listing when the watch breaks, as
// kubectl get -w does) rather than polling it.
func follow(ctx context.Context, c client.WithWatch, so *tandemv1.Switchover, out io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	one := func(opts metav1.ListOptions) *client.ListOptions {
		return &client.ListOptions{Namespace: so.Namespace, FieldSelector: fields.OneTermEqualSelector("metadata.name", so.Name), Raw: &opts}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := &tandemv1.SwitchoverList{}
			return list, c.List(ctx, list, one(opts))
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, &tandemv1.SwitchoverList{}, one(opts))
		},
	}
	seen := map[string]string{}
	_, err := watchtools.UntilWithSync(ctx, lw, &tandemv1.Switchover{}, nil, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return false, fmt.Errorf("Switchover %s was deleted", so.Name)
		}
		got, ok := ev.Object.(*tandemv1.Switchover)
		if !ok {
			return false, nil
		}
		got.DeepCopyInto(so)
		for _, s := range so.Status.Steps {
			state := string(s.Phase) + "|" + s.Message
			if seen[s.Name] == state || s.Phase == tandemv1.StepPending || (s.Phase == tandemv1.StepRunning && s.Message == "") {
				continue
			}
			seen[s.Name] = state
			fmt.Fprintf(out, "  %-20s %-9s %8s  %s\n", s.Name, s.Phase, stepDuration(s), oneLine(s.Message))
		}
		return isFinished(so.Status.Phase), nil
	})
	switch {
	case errors.Is(err, wait.ErrWaitTimeout) || ctx.Err() != nil:
		return fmt.Errorf("stopped following Switchover %s after %s; it goes on: kubectl tandem report %s", so.Name, timeout, so.Name)
	case err != nil:
		return err
	}
	fmt.Fprintln(out)
	printReport(out, so)
	if so.Status.Phase != tandemv1.PhaseSucceeded {
		return fmt.Errorf("Switchover %s ended %s", so.Name, so.Status.Phase)
	}
	return nil
}

func isFinished(p tandemv1.SwitchoverPhase) bool {
	switch p {
	case tandemv1.PhaseSucceeded, tandemv1.PhaseFailed, tandemv1.PhaseRolledBack, tandemv1.PhaseCancelled:
		return true
	}
	return false
}

func stepDuration(s tandemv1.StepStatus) string {
	if s.StartTime == nil || s.EndTime == nil {
		return ""
	}
	return s.EndTime.Sub(s.StartTime.Time).Round(time.Millisecond).String()
}

func newReportCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "report SWITCHOVER",
		Short: "Show what a switchover or drill did: steps with durations, RTO, data-loss window, checks",
		Example: `  kubectl tandem report shop-failover-2 -n shop
  kubectl tandem report to-west -n shop -o jsonpath='{.status.rto}'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames[tandemv1.SwitchoverList](flags, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, ns, err := newClient(flags)
			if err != nil {
				return err
			}
			var so tandemv1.Switchover
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, &so); err != nil {
				return fmt.Errorf("reading Switchover %s/%s: %w", ns, args[0], err)
			}
			if !out.table() {
				return out.print(streams.Out, &so)
			}
			printReport(streams.Out, &so)
			return nil
		},
	}
	out = addOutputFlags(cmd)
	return cmd
}

// printReport prints a Switchover's outcome: phase, measurements, steps,
// and a drill's checks.
func printReport(out io.Writer, so *tandemv1.Switchover) {
	st := so.Status
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Switchover\t%s/%s (%s of HAPair %s to %s)\n", so.Namespace, so.Name, so.Spec.Type, so.Spec.PairRef, so.Spec.TargetCluster)
	fmt.Fprintf(w, "Phase\t%s\n", dash(string(st.Phase)))
	for _, c := range st.Conditions {
		if c.Type == tandemv1.ReadyCondition && st.Phase != tandemv1.PhaseSucceeded {
			fmt.Fprintf(w, "Why\t%s: %s\n", c.Reason, oneLine(c.Message))
		}
	}
	switch {
	case st.FromCluster != "" && st.Epoch > 0:
		fmt.Fprintf(w, "Move\t%s -> %s at epoch %d\n", st.FromCluster, so.Spec.TargetCluster, st.Epoch)
	case st.FromCluster != "":
		fmt.Fprintf(w, "Rehearsal\t%s's copy on %s; roles and epoch unchanged\n", st.FromCluster, so.Spec.TargetCluster)
	}
	if st.StartTime != nil {
		end := "-"
		if st.CompletionTime != nil {
			end = st.CompletionTime.UTC().Format(time.RFC3339) + " (" + st.CompletionTime.Sub(st.StartTime.Time).Round(time.Millisecond).String() + ")"
		}
		fmt.Fprintf(w, "Started\t%s, ended %s\n", st.StartTime.UTC().Format(time.RFC3339), end)
	}
	if st.RTO != nil {
		fmt.Fprintf(w, "RTO\t%s\n", st.RTO.Duration)
	}
	switch {
	case st.DataLossWindow != nil && st.DataLossSince != nil:
		fmt.Fprintf(w, "Data-loss window\tat most %s: changes on %s after %s\n", st.DataLossWindow.Duration, st.FromCluster, st.DataLossSince.UTC().Format(time.RFC3339Nano))
	case st.DataLossWindow != nil:
		fmt.Fprintf(w, "Data-loss window\tat most %s\n", st.DataLossWindow.Duration)
	case st.DataLossUnknown != "":
		fmt.Fprintf(w, "Data-loss window\tunknown: %s\n", st.DataLossUnknown)
	}
	if r := st.Report; r != nil && r.TrafficMovedTime != nil {
		moved := r.TrafficMovedTime.UTC().Format(time.RFC3339)
		if st.StartTime != nil {
			moved += " (" + r.TrafficMovedTime.Sub(st.StartTime.Time).Round(time.Millisecond).String() + " after the start)"
		}
		follow := "-"
		if r.ClientsFollowBy != nil {
			follow = r.ClientsFollowBy.UTC().Format(time.RFC3339) + " (TTL " + r.ClientsFollowBy.Sub(r.TrafficMovedTime.Time).String() + ")"
		}
		fmt.Fprintf(w, "Traffic\tmoved at every authoritative server %s; clients follow by %s\n", moved, follow)
	}
	if r := st.Report; r != nil && r.Summary != "" {
		fmt.Fprintf(w, "Report\t%s\n", r.Summary)
	}
	_ = w.Flush()
	if len(st.Steps) > 0 {
		fmt.Fprintln(out)
		sw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(sw, "STEP\tPHASE\tDURATION\tMESSAGE")
		for _, s := range st.Steps {
			fmt.Fprintf(sw, "%s\t%s\t%s\t%s\n", s.Name, s.Phase, dash(stepDuration(s)), oneLine(s.Message))
		}
		_ = sw.Flush()
	}
	if r := st.Report; r != nil && len(r.Checks) > 0 {
		fmt.Fprintln(out)
		cw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(cw, "CHECK\tPASSED\tDURATION\tMESSAGE")
		for _, c := range r.Checks {
			d := "-"
			if c.Duration != nil {
				d = c.Duration.Duration.String()
			}
			fmt.Fprintf(cw, "%s\t%t\t%s\t%s\n", c.Name, c.Passed, d, dash(c.Message))
		}
		_ = cw.Flush()
	}
}
