package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
)

func newCopiesCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var output string
	var derived bool
	cmd := &cobra.Command{
		Use:   "copies PAIR",
		Short: "List the objects a pair's sync copied to the cluster, apart from what that cluster derived from them",
		Long: `Lists every object of every kind on the cluster kubectl points at (usually the
standby) that carries the pair's tandem.dev/pair labels, and tells the copies
the sync wrote from the objects the cluster's own controllers made from them:
the EndpointSlices of a copied Service and the ReplicaSets of a copied
Deployment inherit its labels or annotations, but have a controlling owner,
no tandem.dev/source-hash, or were not applied by the field manager tandem.
Only copies are listed unless --derived is given. Nothing is written.`,
		Example: `  kubectl tandem copies shop -n shop --context dc-west
  kubectl tandem copies shop -n shop --context dc-west --derived
  kubectl tandem copies shop -n shop --context dc-west -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames[tandemv1.HAPairList](flags, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && output != "yaml" {
				return fmt.Errorf("--output %q: want table, json or yaml", output)
			}
			_, ns, err := newClient(flags)
			if err != nil {
				return err
			}
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return err
			}
			found, skipped, err := replicate.FindMarked(cmd.Context(), cfg, ns, args[0])
			if err != nil {
				return err
			}
			if !derived {
				copies := found[:0]
				for _, m := range found {
					if m.Copy {
						copies = append(copies, m)
					}
				}
				found = copies
			}
			for _, s := range skipped {
				fmt.Fprintf(streams.ErrOut, "warning: not listed: %s\n", s)
			}
			switch output {
			case "json":
				enc := json.NewEncoder(streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(found)
			case "yaml":
				data, err := yaml.Marshal(found)
				if err != nil {
					return err
				}
				_, err = streams.Out.Write(data)
				return err
			}
			if len(found) == 0 {
				fmt.Fprintf(streams.ErrOut, "No object on this cluster carries the labels of pair %s/%s.\n", ns, args[0])
				return nil
			}
			printMarked(streams.Out, found, derived)
			return nil
		},
	}
	cmd.Flags().BoolVar(&derived, "derived", false, "Also list the objects that carry the pair's labels but are not copies, and what made them")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "Output format: table, json or yaml")
	return cmd
}

func printMarked(out io.Writer, found []replicate.Marked, derived bool) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer w.Flush()
	if derived {
		fmt.Fprintln(w, "KIND\tNAMESPACE\tNAME\tPOLICY\tCOPY\tWHY NOT")
	} else {
		fmt.Fprintln(w, "KIND\tNAMESPACE\tNAME\tPOLICY\tCREATED")
	}
	for _, m := range found {
		ns := m.Ref.Namespace
		if ns == "" {
			ns = "-"
		}
		kind := m.Ref.GroupKind().String()
		if derived {
			copied := "yes"
			if !m.Copy {
				copied = "no"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", kind, ns, m.Ref.Name, m.Policy, copied, m.Why)
			continue
		}
		created := "adopted"
		if m.Created {
			created = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", kind, ns, m.Ref.Name, m.Policy, created)
	}
}
