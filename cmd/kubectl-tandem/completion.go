package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Shell completion reads the cluster the kubeconfig and namespace flags
// already typed point at, as kubectl's own completion does. kubectl
// completes a plugin's arguments through an executable named
// kubectl_complete-tandem on the PATH (hack/kubectl_complete-tandem, in the
// release archives), which calls `kubectl tandem __complete`.

// completionTimeout bounds a completion's reads: a shell must not hang on
// an unreachable cluster.
const completionTimeout = 5 * time.Second

// complete runs read against the cluster the flags point at, bounded by
// completionTimeout; a failed read completes nothing and tells the shell.
func complete(cmd *cobra.Command, flags *genericclioptions.ConfigFlags,
	read func(ctx context.Context, c client.Client, ns string) ([]cobra.Completion, error)) ([]cobra.Completion, cobra.ShellCompDirective) {
	c, ns, err := newClient(flags)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	out, err := read(ctx, c, ns)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeNames completes the first max arguments with the names of the
// objects of list L in the namespace.
func completeNames[T any, L interface {
	*T
	client.ObjectList
}](flags *genericclioptions.ConfigFlags, max int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(cmd, flags, func(ctx context.Context, c client.Client, ns string) ([]cobra.Completion, error) {
			list := L(new(T))
			if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return nil, err
			}
			objs, err := meta.ExtractList(list)
			if err != nil {
				return nil, err
			}
			var names []cobra.Completion
			for _, o := range objs {
				if m, err := meta.Accessor(o); err == nil {
					names = append(names, m.GetName())
				}
			}
			return names, nil
		})
	}
}

// completeTarget completes --to with the pair's clusters that are not its
// active side as this cluster records it: where a switchover, a drill or a
// failover moves the service.
func completeTarget(flags *genericclioptions.ConfigFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(cmd, flags, func(ctx context.Context, c client.Client, ns string) ([]cobra.Completion, error) {
			var pair tandemv1.HAPair
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: args[0]}, &pair); err != nil {
				return nil, err
			}
			var targets []cobra.Completion
			for _, cl := range pair.Spec.Clusters {
				if cl.Name != pair.Status.ActiveCluster {
					targets = append(targets, cl.Name)
				}
			}
			return targets, nil
		})
	}
}
