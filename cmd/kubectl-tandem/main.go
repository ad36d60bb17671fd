// Command kubectl-tandem is the kubectl plugin for Tandem: kubectl tandem ...
//
// Commands: status, plan, switchover, failover, drill, report, and cobra's
// completion.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	cmd := newRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
