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

// cachedBins is a set of binaries hack/build-testbed-bins.sh builds into
// the cache, once per test process; env names a directory to use instead.
type cachedBins struct {
	env  string
	what string
	args []string
	once sync.Once
	dir  string
	err  error
}

func (b *cachedBins) path() (string, error) {
	b.once.Do(func() {
		if dir := os.Getenv(b.env); dir != "" {
			b.dir = dir
			return
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "build-testbed-bins.sh"), b.args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			b.err = fmt.Errorf("building %s: %w\n%s", b.what, err, stderr.String())
			return
		}
		b.dir = strings.TrimSpace(stdout.String())
	})
	return b.dir, b.err
}

var (
	controlPlaneBins = &cachedBins{env: "TANDEM_TESTBED_BIN", what: "the test bed binaries"}
	csiBins          = &cachedBins{env: "TANDEM_TESTBED_CSI_BIN", what: "the CSI sidecars",
		args: []string{"snapshot-controller", "csi-snapshotter", "csi-provisioner"}}
	nodeBins = &cachedBins{env: "TANDEM_TESTBED_NODE_BIN", what: "the real node binaries",
		args: []string{"kubelet", "containerd", "ctr", "containerd-shim-runc-v2", "bridge", "host-local", "loopback"}}
)

// BinDir returns the directory holding kube-apiserver, etcd,
// kube-controller-manager, kube-scheduler, kwok and kwokctl. It honours
// TANDEM_TESTBED_BIN, and otherwise runs hack/build-testbed-bins.sh, which
// builds what is missing into the cache outside the checkout.
func BinDir() (string, error) { return controlPlaneBins.path() }

// CSIBinDir returns the directory holding snapshot-controller,
// csi-snapshotter and csi-provisioner, built the same way. It honours
// TANDEM_TESTBED_CSI_BIN.
func CSIBinDir() (string, error) { return csiBins.path() }

// NodeBinDir returns the directory holding what a real node runs: kubelet,
// containerd, ctr, containerd-shim-runc-v2 and the CNI plugins bridge,
// host-local and loopback. It honours TANDEM_TESTBED_NODE_BIN.
func NodeBinDir() (string, error) { return nodeBins.path() }
