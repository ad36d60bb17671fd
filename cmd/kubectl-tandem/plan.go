package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
)

func newPlanCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var pairName, output string
	cmd := &cobra.Command{
		Use:   "plan SYNCPOLICY",
		Short: "Show what a SyncPolicy would copy to the standby, wave by wave, without applying anything",
		Long: `Lists the objects the SyncPolicy selects on the cluster kubectl points at (the
active side), orders them into the waves the sync applies them in, and shows
what the transforms change. Nothing is written to either cluster.`,
		Example: `  kubectl tandem plan shop -n shop
  kubectl tandem plan shop -n shop -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames[tandemv1.SyncPolicyList](flags, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := newClient(flags)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var policy tandemv1.SyncPolicy
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: args[0]}, &policy); err != nil {
				return fmt.Errorf("reading SyncPolicy %s/%s: %w", ns, args[0], err)
			}
			pair, err := findPair(cmd, c, ns, policy.Name, pairName)
			if err != nil {
				return err
			}
			spec := policy.Spec
			if pair != nil {
				// The transforms as they apply now: towards the standby.
				spec = replicate.Directed(spec, pair.Spec.Primary, standbyOf(pair))
			}
			opts := replicate.Options{Policy: policy.Name, Mode: spec.StandbyMode, Transforms: spec.Transforms}
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return err
			}
			var preview *replicate.Preview
			if pair != nil {
				opts.Pair, opts.PairNamespace = pair.Name, pair.Namespace
				preview, err = replicate.PreviewPlan(ctx, cfg, spec, opts, replicate.PairSecrets(pair))
			} else {
				preview, err = replicate.PreviewPlan(ctx, cfg, spec, opts, nil)
			}
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(preview)
			case "yaml":
				data, err := yaml.Marshal(preview)
				if err != nil {
					return err
				}
				_, err = streams.Out.Write(data)
				return err
			case "", "table":
				printPlan(streams.Out, &policy, pair, preview)
				return nil
			default:
				return fmt.Errorf("--output %q: want table, json or yaml", output)
			}
		},
	}
	cmd.Flags().StringVar(&pairName, "pair", "", "HAPair whose sync to preview (default: the one that lists the policy)")
	_ = cmd.RegisterFlagCompletionFunc("pair", func(cmd *cobra.Command, _ []string, s string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return completeNames[tandemv1.HAPairList](flags, 1)(cmd, nil, s)
	})
	cmd.Flags().StringVarP(&output, "output", "o", "table", "Output format: table, json or yaml")
	return cmd
}

// findPair returns the HAPair named by --pair, or the first that lists the
// policy, or nil when none does (the preview then has no pair secrets to
// leave out).
func findPair(cmd *cobra.Command, c client.Client, ns, policy, name string) (*tandemv1.HAPair, error) {
	if name != "" {
		var p tandemv1.HAPair
		if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return nil, fmt.Errorf("reading HAPair %s/%s: %w", ns, name, err)
		}
		return &p, nil
	}
	var pairs tandemv1.HAPairList
	if err := c.List(cmd.Context(), &pairs, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing HAPairs in %s: %w", ns, err)
	}
	sort.Slice(pairs.Items, func(i, j int) bool { return pairs.Items[i].Name < pairs.Items[j].Name })
	for i := range pairs.Items {
		for _, ref := range pairs.Items[i].Spec.SyncPolicyRefs {
			if ref.Name == policy {
				return &pairs.Items[i], nil
			}
		}
	}
	return nil, nil
}

func printPlan(out io.Writer, policy *tandemv1.SyncPolicy, pair *tandemv1.HAPair, p *replicate.Preview) {
	mode := policy.Spec.StandbyMode
	if mode == "" {
		mode = tandemv1.StandbyWarm
	}
	target := "the standby"
	if pair != nil {
		target = fmt.Sprintf("HAPair %s", pair.Name)
	}
	fmt.Fprintf(out, "SyncPolicy %s/%s for %s: %d objects in %d waves, standby mode %s\n\n", policy.Namespace, policy.Name, target, len(p.Items), p.Waves, mode)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tOBJECT\tCHANGES")
	for _, it := range p.Items {
		changes := strings.Join(it.Changes, "; ")
		if it.Error != "" {
			changes = "ERROR: " + it.Error
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", it.Wave, it.Ref, changes)
	}
	_ = tw.Flush()
	if len(p.Cycles) > 0 {
		fmt.Fprintln(out, "\nNot applied, on a dependency cycle:")
		for _, c := range p.Cycles {
			names := make([]string, len(c))
			for i, r := range c {
				names[i] = r.String()
			}
			fmt.Fprintf(out, "  %s\n", strings.Join(names, ", "))
		}
		for _, b := range p.Blocked {
			fmt.Fprintf(out, "  %s (depends on a cycle)\n", b)
		}
	}
	if len(p.Missing) > 0 {
		fmt.Fprintln(out, "\nDependencies not selected (assumed present on the standby):")
		for _, e := range p.Missing {
			fmt.Fprintf(out, "  %s needs %s (%s)\n", e.From, e.To, e.Reason)
		}
	}
	for _, msg := range p.Invalid {
		fmt.Fprintf(out, "\nIgnored annotation: %s\n", msg)
	}
}

// standbyOf is the pair's standby as its status records it, or the cluster
// that is not spec.primary for a pair without a record yet.
func standbyOf(pair *tandemv1.HAPair) string {
	if pair.Status.StandbyCluster != "" {
		return pair.Status.StandbyCluster
	}
	for _, c := range pair.Spec.Clusters {
		if c.Name != pair.Spec.Primary {
			return c.Name
		}
	}
	return ""
}
