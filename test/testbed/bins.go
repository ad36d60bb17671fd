// Package testbed gives tests real Kubernetes control planes: envtest API
// servers for integration tests, and kwok clusters (full control planes with
// simulated nodes) for end-to-end tests. Everything listens on 127.0.0.1 and
// is stopped by PID.
package testbed

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// RepoRoot is the root of the Tandem checkout the tests run from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// BinDir returns the directory holding kube-apiserver, etcd,
// kube-controller-manager, kube-scheduler, kwok and kwokctl. It honours
// TANDEM_TESTBED_BIN, and otherwise runs hack/build-testbed-bins.sh, which
// builds what is missing into the cache outside the checkout.
func BinDir() (string, error) {
	binOnce.Do(func() {
		if dir := os.Getenv("TANDEM_TESTBED_BIN"); dir != "" {
			binDir = dir
			return
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "build-testbed-bins.sh"))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			binErr = fmt.Errorf("building the test bed binaries: %w\n%s", err, stderr.String())
			return
		}
		binDir = strings.TrimSpace(stdout.String())
	})
	return binDir, binErr
}
