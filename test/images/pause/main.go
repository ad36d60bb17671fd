// Command pause is the sandbox ("pause") process of the test bed's real
// nodes: PID 1 of every pod, holding its namespaces. It waits for SIGTERM or
// SIGINT and, as PID 1 must, reaps the children re-parented to it. Built
// here because the test bed pulls no image from a registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
