package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// OperatorBinary builds cmd/tandem-operator once per test process.
func OperatorBinary() (string, error) { return operatorBuild.path() }

// PluginBinary builds cmd/kubectl-tandem once per test process.
func PluginBinary() (string, error) { return pluginBuild.path() }

var (
	operatorBuild = &goBinary{pkg: "./cmd/tandem-operator", name: "tandem-operator"}
	pluginBuild   = &goBinary{pkg: "./cmd/kubectl-tandem", name: "kubectl-tandem"}
)

// goBinary is a command of this module built once into a temp dir.
type goBinary struct {
	pkg, name string
	once      sync.Once
	bin       string
	err       error
}

func (b *goBinary) path() (string, error) {
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.name+"-")
		if err != nil {
			b.err = err
			return
		}
		b.bin = filepath.Join(dir, b.name)
		cmd := exec.Command("go", "build", "-o", b.bin, b.pkg)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %w\n%s", b.pkg, err, out)
		}
	})
	return b.bin, b.err
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Operator is a tandem-operator process running against one cluster, the way
// it runs in a data center but as a local process.
type Operator struct {
	Cluster    string
	HealthAddr string
	LogPath    string
	args       []string
	cmd        *exec.Cmd
	done       chan struct{}
}

// StartOperator starts the operator for a data center against cluster c and
// stops it (by PID) when the test ends. Its log goes to a file in the test's
// temp dir.
func StartOperator(t testing.TB, c *Cluster, clusterName string, extraArgs ...string) *Operator {
	t.Helper()
	op, err := LaunchOperator(c, clusterName, filepath.Join(t.TempDir(), "operator-"+clusterName+".log"), extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Stop)
	return op
}

// LaunchOperator starts the operator for a data center against cluster c,
// logging to logPath. The caller stops it.
func LaunchOperator(c *Cluster, clusterName, logPath string, extraArgs ...string) (*Operator, error) {
	bin, err := OperatorBinary()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	op := &Operator{
		Cluster:    clusterName,
		HealthAddr: fmt.Sprintf("127.0.0.1:%d", port),
		LogPath:    logPath,
	}
	op.args = append([]string{
		"--kubeconfig", c.Kubeconfig,
		"--cluster-name", clusterName,
		"--health-probe-bind-address", op.HealthAddr,
		"--metrics-bind-address", "0",
		"--leader-election-namespace", "tandem-system",
	}, extraArgs...)
	if err := op.start(bin); err != nil {
		return nil, err
	}
	return op, nil
}

// PID of the running operator process.
func (o *Operator) PID() int { return o.cmd.Process.Pid }

func (o *Operator) start(bin string) error {
	logFile, err := os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	o.cmd = exec.Command(bin, o.args...)
	o.cmd.Stdout, o.cmd.Stderr = logFile, logFile
	if err := o.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting the operator for %s: %w", o.Cluster, err)
	}
	o.done = make(chan struct{})
	go func() {
		_ = o.cmd.Wait()
		logFile.Close()
		close(o.done)
	}()
	return nil
}

// WaitHealthy waits until the operator answers /readyz.
func (o *Operator) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	err := Poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		select {
		case <-o.done:
			return false, fmt.Errorf("the operator exited: %s", o.cmd.ProcessState)
		default:
		}
		resp, err := http.Get("http://" + o.HealthAddr + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("readyz answered %d", resp.StatusCode)
	})
	if err != nil {
		return fmt.Errorf("operator for %s not healthy: %w\n%s", o.Cluster, err, o.Logs())
	}
	return nil
}

// Kill ends the operator at once, as a crash would.
func (o *Operator) Kill() {
	if o.cmd.Process != nil {
		_ = o.cmd.Process.Signal(syscall.SIGKILL)
		<-o.done
	}
}

// Exited reports whether the operator process has ended (killed, stopped
// or exited by itself).
func (o *Operator) Exited() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// Restart starts a killed or stopped operator again with the same flags.
func (o *Operator) Restart() error {
	return o.start(o.cmd.Path)
}

// Stop ends the operator gracefully, and kills it if it does not exit.
func (o *Operator) Stop() {
	if o.cmd.Process == nil {
		return
	}
	select {
	case <-o.done:
		return
	default:
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		o.Kill()
	}
}

// Logs returns the operator's log so far.
func (o *Operator) Logs() string {
	data, _ := os.ReadFile(o.LogPath)
	const max = 16 << 10
	if len(data) > max {
		data = append([]byte("...\n"), data[len(data)-max:]...)
	}
	return string(bytes.TrimSpace(data))
}

// ReconcileErrors returns the lines of the operator's log in which the
// named controller reported a failed reconcile, as controller-runtime logs
// them ("Reconciler error").
func (o *Operator) ReconcileErrors(controller string) []string {
	data, _ := os.ReadFile(o.LogPath)
	var errs []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"Reconciler error"`) && strings.Contains(line, `"controller":"`+controller+`"`) {
			errs = append(errs, line)
		}
	}
	return errs
}

// FindCondition returns the status condition of the given type of an
// unstructured object, or nil.
func FindCondition(obj *unstructured.Unstructured, condType string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == condType {
			return m
		}
	}
	return nil
}
