package main

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// version is the release, set by hack/dist.sh (-X main.version).
var version = "dev"

func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:           "kubectl-tandem",
		Short:         "Inspect and drive Tandem's active/standby pairs",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newStatusCommand(flags, streams),
		newPlanCommand(flags, streams),
		newCopiesCommand(flags, streams),
		newMoveCommand(flags, streams, tandemv1.SwitchoverPlanned),
		newMoveCommand(flags, streams, tandemv1.SwitchoverFailover),
		newMoveCommand(flags, streams, tandemv1.SwitchoverDrill),
		newReportCommand(flags, streams),
	)
	return root
}

// newClient returns a client for the cluster the kubectl flags point at.
func newClient(flags *genericclioptions.ConfigFlags) (client.WithWatch, string, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	return c, ns, err
}
