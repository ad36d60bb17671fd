package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names of the test bed's storage objects, the same in each data center.
const (
	CSIDriverName     = "csi.tandem.test"
	StorageClass      = "tandem-csi"
	SnapshotClass     = "csi-snapclass"
	CSIReplicaPrefix  = "replica-"
	snapshotterModule = "github.com/kubernetes-csi/external-snapshotter/client/v8"
)

// storageObjects are applied to each data center with storage: a
// StorageClass that binds at once (most nodes are simulated, with no
// kubelet to wait for), the same under the site's own name (fast-east on
// dc-east, as the sample SyncPolicy maps them), the VolumeSnapshotClass
// Tandem's policies name, and the CSIDriver a real node's kubelet reads:
// nothing to attach (a volume is a directory), and no fsGroup chown.
func storageObjects(cluster string) string {
	class := func(name string) string {
		return `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ` + name + `
provisioner: ` + CSIDriverName + `
volumeBindingMode: Immediate
reclaimPolicy: Delete
---
`
	}
	return class(StorageClass) + class("fast-"+strings.TrimPrefix(cluster, "dc-")) + snapshotClassObject + csiDriverObject
}

const csiDriverObject = `---
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata:
  name: ` + CSIDriverName + `
spec:
  attachRequired: false
  podInfoOnMount: false
  fsGroupPolicy: None
  volumeLifecycleModes: [Persistent]
`

const snapshotClassObject = `
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: ` + SnapshotClass + `
driver: ` + CSIDriverName + `
deletionPolicy: Delete
`

// StorageOptions configure a data center's storage.
type StorageOptions struct {
	// Peer is the other data center, where snapshots replicate to.
	Peer string
	// ReplicationDelay is the time from a snapshot to its replica being
	// usable at the peer; 1s when zero.
	ReplicationDelay time.Duration
}

// storageComponents are the processes of one data center's storage, in
// start order: the driver first, since the sidecars wait for its socket.
var storageComponents = []string{"tandem-csi", "csi-provisioner", "csi-snapshotter", "snapshot-controller"}

// StorageDir is where a data center's volumes and snapshots live: the test
// bed driver keeps volume <id> in StorageDir/volumes/<id>, so a test can
// write into a volume the way a pod would.
func (b *Bed) StorageDir(name string) string { return filepath.Join(b.Dir, "storage", name) }

// VolumeDir is the directory holding the files of a CSI volume.
func (b *Bed) VolumeDir(name, volumeHandle string) string {
	return filepath.Join(b.StorageDir(name), "volumes", volumeHandle)
}

// StartStorage gives data center name real CSI storage: the VolumeSnapshot
// CRDs, the snapshot-controller, and the project's test bed driver with the
// real csi-provisioner and csi-snapshotter sidecars, replicating snapshots to
// opts.Peer. The processes outlive the caller (the testbed CLI exits after
// up); Stop, Start and Delete of the cluster stop and start them with it.
func (b *Bed) StartStorage(ctx context.Context, name string, opts StorageOptions) error {
	if opts.ReplicationDelay == 0 {
		opts.ReplicationDelay = time.Second
	}
	c, err := b.Cluster(name)
	if err != nil {
		return err
	}
	if err := installSnapshotCRDs(ctx, c.Client); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	objs, err := Decode(storageObjects(name))
	if err != nil {
		return err
	}
	if err := ApplyObjects(ctx, c.Client, objs); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	if err := writeJSON(b.storageConfigPath(name), opts); err != nil {
		return err
	}
	return b.startStorageProcesses(name, opts)
}

func (b *Bed) startStorageProcesses(name string, opts StorageOptions) error {
	csiBin, err := CSIBinDir()
	if err != nil {
		return err
	}
	driver, err := csiDriverBinary()
	if err != nil {
		return err
	}
	sock := filepath.Join(b.storageRunDir(), name+".sock")
	kubeconfig := "--kubeconfig=" + b.KubeconfigPath(name)
	// The sidecars' default of 5 requests a second throttles a few dozen
	// snapshots into minutes; storage vendors ship them tuned up, and so
	// does the test bed, or it would measure their rate limit as RPO.
	qps := []string{"--kube-api-qps=200", "--kube-api-burst=400"}
	args := map[string][]string{
		"tandem-csi": {driver, "--endpoint=unix://" + sock, "--driver-name=" + CSIDriverName,
			"--root=" + b.StorageDir(name), "--peer-root=" + b.StorageDir(opts.Peer),
			"--replica-prefix=" + CSIReplicaPrefix, "--replication-delay=" + opts.ReplicationDelay.String()},
		"csi-provisioner": {filepath.Join(csiBin, "csi-provisioner"), "--csi-address=" + sock, kubeconfig,
			"--leader-election=false", "--extra-create-metadata", "--retry-interval-max=2s", qps[0], qps[1]},
		"csi-snapshotter": {filepath.Join(csiBin, "csi-snapshotter"), "--csi-address=" + sock, kubeconfig,
			"--leader-election=false", "--extra-create-metadata", "--retry-interval-max=2s", qps[0], qps[1]},
		"snapshot-controller": {filepath.Join(csiBin, "snapshot-controller"), kubeconfig,
			"--leader-election=false", "--retry-interval-max=2s", qps[0], qps[1]},
	}
	for _, comp := range storageComponents {
		if err := b.startProcess(name, comp, args[comp]); err != nil {
			_ = b.stopStorage(name)
			return err
		}
		if comp == "tandem-csi" {
			if err := waitForFile(sock, 10*time.Second); err != nil {
				_ = b.stopStorage(name)
				return fmt.Errorf("cluster %s: the CSI driver did not serve: %w\n%s", name, err, tail(b.storageLogPath(name, comp)))
			}
		}
	}
	return nil
}

// startProcess starts one storage process in its own process group (so a
// Ctrl-C at the testbed CLI does not take it down), logging to a file and
// recording its PID.
func (b *Bed) startProcess(name, comp string, argv []string) error {
	if err := startDetached(argv, nil, b.storageLogPath(name, comp), b.storagePIDPath(name, comp)); err != nil {
		return fmt.Errorf("cluster %s: starting %s: %w", name, comp, err)
	}
	return nil
}

// startDetached starts argv (with env added to this process's) in its own
// process group, appending its output to logPath and writing its PID to
// pidPath, and reaps it when it exits, so it does not linger as a zombie
// while the test process runs.
func startDetached(argv, env []string, logPath, pidPath string) error {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return os.WriteFile(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

// readPID reads a PID file.
func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// storagePIDs returns the live storage and external-dns processes of a
// data center.
func (b *Bed) storagePIDs(name string) map[string]int {
	pids := map[string]int{}
	for _, comp := range siteComponents() {
		if pid, err := readPID(b.storagePIDPath(name, comp)); err == nil && ProcessAlive(pid) {
			pids[comp] = pid
		}
	}
	return pids
}

func siteComponents() []string {
	return append(append([]string{}, storageComponents...), externalDNSComponents...)
}

// stopStorage stops a data center's storage and external-dns processes; its
// volumes and snapshots stay on disk, and replications in flight are lost.
func (b *Bed) stopStorage(name string) error {
	err := killAll(b.storagePIDs(name))
	for _, comp := range siteComponents() {
		_ = os.Remove(b.storagePIDPath(name, comp))
	}
	return err
}

// restartStorage starts the storage and external-dns of a data center
// that had them before it was stopped.
func (b *Bed) restartStorage(name string) error {
	var opts StorageOptions
	found, err := readJSON(b.storageConfigPath(name), &opts)
	if err != nil {
		return err
	}
	if found {
		if err := b.startStorageProcesses(name, opts); err != nil {
			return err
		}
	}
	var dns ExternalDNSOptions
	if found, err = readJSON(b.externalDNSConfigPath(name), &dns); err != nil || !found {
		return err
	}
	return b.startExternalDNSProcesses(name, dns)
}

// writeJSON writes v to path, creating its directory; the file is the
// caller's only (it may hold a TSIG secret).
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// readJSON reads path into v and says whether the file exists.
func readJSON(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(data, v)
}

func (b *Bed) storageRunDir() string { return filepath.Join(b.Dir, "storage", "run") }

func (b *Bed) storageConfigPath(name string) string {
	return filepath.Join(b.storageRunDir(), name+".json")
}

func (b *Bed) storagePIDPath(name, comp string) string {
	return filepath.Join(b.storageRunDir(), name+"-"+comp+".pid")
}

func (b *Bed) storageLogPath(name, comp string) string {
	return filepath.Join(b.storageRunDir(), name+"-"+comp+".log")
}

// installSnapshotCRDs applies the (group) VolumeSnapshot CRDs of external-snapshotter
// v8.7.0 (from the module cache) and waits until they are established.
func installSnapshotCRDs(ctx context.Context, c client.Client) error {
	dir, err := moduleDir(snapshotterModule)
	if err != nil {
		return err
	}
	var files []string
	// The group snapshot CRDs too: the snapshot-controller waits for them
	// before it does anything, as a standard install has them.
	for _, file := range []string{
		"snapshot.storage.k8s.io_volumesnapshotclasses", "snapshot.storage.k8s.io_volumesnapshotcontents",
		"snapshot.storage.k8s.io_volumesnapshots", "groupsnapshot.storage.k8s.io_volumegroupsnapshotclasses",
		"groupsnapshot.storage.k8s.io_volumegroupsnapshotcontents", "groupsnapshot.storage.k8s.io_volumegroupsnapshots",
	} {
		files = append(files, filepath.Join(dir, "config", "crd", file+".yaml"))
	}
	return installCRDs(ctx, c, files...)
}

// installCRDs applies the CRDs in files and waits until each is
// established.
func installCRDs(ctx context.Context, c client.Client, files ...string) error {
	var crds []*unstructured.Unstructured
	for _, f := range files {
		objs, err := ReadManifests(f)
		if err != nil {
			return err
		}
		crds = append(crds, objs...)
	}
	if err := ApplyObjects(ctx, c, crds); err != nil {
		return err
	}
	for _, crd := range crds {
		err := Poll(ctx, 30*time.Second, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(crd.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKey{Name: crd.GetName()}, got); err != nil {
				return false, err
			}
			if cond := FindCondition(got, "Established"); cond != nil && cond["status"] == "True" {
				return true, nil
			}
			return false, fmt.Errorf("CRD %s not established", crd.GetName())
		})
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	modDirMu sync.Mutex
	modDirs  = map[string]string{}
)

// moduleDir is where a dependency of this module sits in the module cache.
func moduleDir(module string) (string, error) {
	modDirMu.Lock()
	defer modDirMu.Unlock()
	if dir, ok := modDirs[module]; ok {
		return dir, nil
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = RepoRoot()
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("locating %s: %w\n%s", module, err, stderr.String())
	}
	dir := strings.TrimSpace(out.String())
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded (run go mod download)", module)
	}
	modDirs[module] = dir
	return dir, nil
}

var csiDriverBuild = &goBinary{pkg: "./test/csidriver", name: "tandem-csi"}

// csiDriverBinary builds the test bed's CSI driver once per process.
func csiDriverBinary() (string, error) { return csiDriverBuild.path() }

func waitForFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear within %s", path, timeout)
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}
