// Command kubectl-tandem is the kubectl plugin for Tandem: kubectl tandem ...
//
// This version has one command, plan; status, switchover, failover, drill
// and report come with the switchover and ship-it issues.
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
