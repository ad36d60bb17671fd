package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A real node is one kubelet with a containerd of its own, next to a data
// center's kwok nodes, running real containers with runc. ../shared/TESTBED.md
// lists the traps this file steers around; the comments below name them.
//
// Every node lives in three private things of its own, so that nothing of
// it touches the host and all of it goes away with it:
//
//   - a mount namespace, held open by a small holder process: the sysctl
//     files the kubelet insists on, containerd's shim sockets, the CNI cache
//     and every volume and rootfs mount live and die there;
//   - a cgroup (in every v1 hierarchy), holding the holder, containerd, the
//     kubelet, the shims and the pods: freezing it darkens the node, and
//     killing what it holds stops the node without a survivor;
//   - a bridge with an address of the test bed's pod range, the host side of
//     which is the node's IP.
//
// Pod addresses are never routed off the machine: a blackhole route covers
// the whole pod range before any bridge exists, so a missing or downed
// bridge drops packets instead of sending them to the default gateway, and
// a dark node's subnet is made unreachable rather than its bridge taken down.

const (
	// PodRange is the address range of every real node's pods; each node
	// takes a /24 of it.
	PodRange = "10.244.0.0/16"
	// RealNodeTaint keeps pods off real nodes unless they tolerate it: the
	// kwok nodes carry the test bed's load, real ones what must truly run.
	RealNodeTaint = "tandem.dev/real-node"
	// RealNodeLabel marks real nodes, for node selectors.
	RealNodeLabel = "tandem.dev/real-node"
	// SandboxImage is the pause image every pod's sandbox runs.
	SandboxImage = "tandem.local/pause:v1"
)

// nodeComponents are a real node's processes, in start order.
var nodeComponents = []string{"node-ns", "containerd", "csi-node", "kubelet"}

// kernelDefaults are the sysctls the kubelet wants (it checks them with
// protectKernelDefaults, and would write them machine-wide without it):
// inside the node's mount namespace, files holding these values cover the
// /proc/sys entries, so the host keeps its own (trap 2).
var kernelDefaults = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// sysctlFile is where a node keeps the value that covers /proc/sys/key.
func (n *Node) sysctlFile(key string) string {
	return filepath.Join(n.Dir, "sysctl", strings.ReplaceAll(key, "/", "."))
}

// nodeBindMounts are the paths containerd, its shims, libcni and the
// kubelet use whatever their configuration says (trap 6): in the node's
// mount namespace each is a directory of the node's own.
var nodeBindMounts = map[string]string{
	"/run/containerd":     "run-containerd",
	"/var/lib/cni":        "cni/cache",
	"/var/log/containers": "container-logs",
}

// Node is a real node of a data center.
type Node struct {
	// Cluster is the data center the node belongs to.
	Cluster string `json:"cluster"`
	// Name is the Node object's name.
	Name string `json:"name"`
	// Index picks the node's /24 of PodRange, its bridge and its cgroup.
	Index int `json:"index"`
	// Dir holds the node's state; short, because unix socket paths under
	// it must stay below 108 bytes (trap 6).
	Dir         string `json:"dir"`
	KubeletPort int    `json:"kubeletPort"`
	HealthzPort int    `json:"healthzPort"`
	// Kubelet says a kubelet runs for it (the witness's has none).
	Kubelet bool `json:"kubelet"`
}

// Bridge is the name of the node's pod bridge.
func (n *Node) Bridge() string { return fmt.Sprintf("tandem%d", n.Index) }

// Subnet is the node's share of PodRange.
func (n *Node) Subnet() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(n.Index), 0}), 24)
}

// HostIP is the host side of the node's bridge: the node's InternalIP, the
// address its cluster's control plane listens on, and where pods reach the
// host.
func (n *Node) HostIP() netip.Addr { return netip.AddrFrom4([4]byte{10, 244, byte(n.Index), 1}) }

// ServiceRange is the cluster's service-cluster-ip-range: the first /27 of
// the node's subnet, so the "kubernetes" Service's ClusterIP (the range's
// first address) is HostIP. The API server is reachable on HostIP:443, so
// a pod's in-cluster configuration reaches it as is, without kube-proxy.
// Pods take addresses after the range.
func (n *Node) ServiceRange() netip.Prefix {
	return netip.PrefixFrom(n.Subnet().Addr(), 27)
}

// CgroupName is the node's cgroup, in every hierarchy (the kubelet's
// cgroupRoot).
func (n *Node) CgroupName() string { return fmt.Sprintf("tandem-node-%d", n.Index) }

// APIServer is where pods (and anyone else) reach the cluster's API server:
// the address a kubeconfig Secret for an operator's pod names.
func (n *Node) APIServer() string { return "https://" + n.HostIP().String() + ":443" }

// PodKubeconfig is the cluster's kubeconfig, certificates embedded, naming
// the API server where pods reach it: what a kubeconfig Secret for an
// operator running as a pod holds.
func (b *Bed) PodKubeconfig(cluster string) ([]byte, error) {
	n, err := b.Node(cluster)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, fmt.Errorf("cluster %s has no address on the pod network (UpOptions.RealNodes)", cluster)
	}
	c, err := b.Cluster(cluster)
	if err != nil {
		return nil, err
	}
	return c.FlatKubeconfigFor(n.APIServer())
}

// Socket is containerd's address, for ctr and crictl.
func (n *Node) Socket() string { return filepath.Join(n.Dir, "containerd.sock") }

// RealNodeSupport says why this machine cannot run a real node, or nil.
// Tests that need one skip with this message where it is not nil.
func RealNodeSupport() error {
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (mount namespaces, cgroups, bridges)")
	}
	for _, tool := range []string{"runc", "unshare", "nsenter", "ip", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("a real node needs %s on PATH (apt-get install -y runc util-linux iproute2)", tool)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
		return errors.New("a real node needs the cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer")
	}
	return nil
}

// StartNode gives a data center one real node: it creates the bridge, the
// cgroup and the mount namespace, starts containerd and the kubelet, imports
// the sandbox image and waits for the Node to be Ready. The node is tainted
// RealNodeTaint:NoSchedule and labelled RealNodeLabel.
func (b *Bed) StartNode(ctx context.Context, cluster string) (*Node, error) {
	if err := RealNodeSupport(); err != nil {
		return nil, err
	}
	n, err := b.Node(cluster)
	if err != nil {
		return nil, err
	}
	if n == nil {
		if n, err = b.AllocateNode(cluster); err != nil {
			return nil, err
		}
	}
	n.Kubelet = true
	if err := writeJSON(b.nodeStatePath(cluster), n); err != nil {
		return nil, err
	}
	if err := b.setUpNode(n); err != nil {
		_ = b.DeleteNode(cluster)
		return nil, err
	}
	if err := b.startNodeProcesses(ctx, n); err != nil {
		_ = b.DeleteNode(cluster)
		return nil, err
	}
	return n, nil
}

// Node returns the real node of a data center, or nil when it has none.
func (b *Bed) Node(cluster string) (*Node, error) {
	var n Node
	found, err := readJSON(b.nodeStatePath(cluster), &n)
	if err != nil || !found {
		return nil, err
	}
	return &n, nil
}

func (b *Bed) nodeStatePath(cluster string) string {
	return filepath.Join(b.Dir, "nodes", cluster+".json")
}

// nodeSites lists the clusters (and the DNS server) that hold a share of
// the pod network.
func (b *Bed) nodeSites() []string {
	paths, _ := filepath.Glob(b.nodeStatePath("*"))
	var sites []string
	for _, p := range paths {
		sites = append(sites, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	return sites
}

// AllocateNode gives a data center its share of the pod network before
// its cluster is created: a bridge whose host side, HostIP, is where the
// cluster's control plane then listens (so that pods reach it, and the
// API server's certificate names it), and a /24 for the pods of its real
// node. The witness gets one too, without a node: the operators' pods reach
// it there. It picks the first index whose bridge does not exist; creating
// the bridge is the lock, so two test beds on one machine never share one.
func (b *Bed) AllocateNode(cluster string) (*Node, error) {
	if err := RealNodeSupport(); err != nil {
		return nil, err
	}
	if err := ensurePodRangeBlackhole(); err != nil {
		return nil, err
	}
	kubeletPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	healthzPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	for i := 1; i < 255; i++ {
		n := &Node{Cluster: cluster, Name: cluster + "-real", Index: i,
			KubeletPort: kubeletPort, HealthzPort: healthzPort}
		if err := run("ip", "link", "add", n.Bridge(), "type", "bridge"); err != nil {
			continue
		}
		n.Dir = filepath.Join(os.TempDir(), fmt.Sprintf("tandem-node-%d", i))
		if err := writeJSON(b.nodeStatePath(cluster), n); err != nil {
			_ = run("ip", "link", "del", n.Bridge())
			return nil, err
		}
		// The bridge carries no gateway and no masquerade (trap 7): pods
		// reach the host and their own subnet, and nothing else.
		hostCIDR := netip.PrefixFrom(n.HostIP(), 24).String()
		if err := run("ip", "addr", "add", hostCIDR, "dev", n.Bridge()); err != nil {
			return nil, errors.Join(err, b.DeleteNode(cluster))
		}
		if err := run("ip", "link", "set", n.Bridge(), "up"); err != nil {
			return nil, errors.Join(err, b.DeleteNode(cluster))
		}
		return n, nil
	}
	return nil, errors.New("no free real-node index: 254 tandem bridges exist")
}

// ensurePodRangeBlackhole drops every packet for PodRange that no bridge
// route claims (trap 8). It is installed before the first bridge and left in
// place: it only ever keeps packets on the machine.
func ensurePodRangeBlackhole() error {
	return run("ip", "route", "replace", "blackhole", PodRange)
}

func (b *Bed) setUpNode(n *Node) error {
	// A node's state from an earlier run with this index is stale.
	if err := os.RemoveAll(n.Dir); err != nil {
		return err
	}
	for _, d := range []string{"containerd/root", "containerd/state", "runc", "run-containerd", "cni/net.d",
		"cni/cache", "cni/ipam", "kubelet", "pod-logs", "container-logs", "sysctl", "certs"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := b.makeNodeCgroup(n); err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml":              containerdConfig(n),
		"cni/net.d/10-tandem.conflist": cniConfig(n),
		"kubelet.yaml":                 b.kubeletConfig(n),
		"resolv.conf":                  "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.Dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for key, value := range kernelDefaults {
		if err := os.WriteFile(n.sysctlFile(key), []byte(value+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers,
// the named systemd one and the unified one of a hybrid host).
func cgroupHierarchies() []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// makeNodeCgroup creates the node's cgroup and its system child (where the
// node's own processes run) in every hierarchy (trap 3). A new cpuset
// cgroup starts with no CPUs and no memory nodes; it gets its parent's.
func (b *Bed) makeNodeCgroup(n *Node) error {
	for _, h := range cgroupHierarchies() {
		for _, dir := range []string{filepath.Join(h, n.CgroupName()), filepath.Join(h, n.CgroupName(), "system")} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if filepath.Base(h) != "cpuset" {
				continue
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var toxiproxyServer = &goBinary{pkg: "github.com/Shopify/toxiproxy/v2/cmd/server", name: "toxiproxy-server"}

// startAPIServerProxy makes the cluster's API server (bound to 127.0.0.1
// like all of kwokctl's components, whose clients assume it) reachable on
// HostIP:443, through a toxiproxy server of its own: a process, because the
// testbed CLI exits after up, and outside the node's cgroup, because the
// witness has no node. It runs until the cluster is deleted; while the
// data center is dark it has nothing to forward to.
func (b *Bed) startAPIServerProxy(n *Node, c *Cluster) error {
	bin, err := toxiproxyServer.path()
	if err != nil {
		return err
	}
	upstream := strings.TrimPrefix(c.Config.Host, "https://")
	config := filepath.Join(b.Dir, "nodes", n.Cluster+"-apiserver-proxy.toxiproxy")
	if err := writeJSON(config, []map[string]any{{"name": "apiserver", "listen": n.HostIP().String() + ":443",
		"upstream": upstream, "enabled": true}}); err != nil {
		return err
	}
	admin, err := FreePort()
	if err != nil {
		return err
	}
	if err := b.startNodeProcess(n, "apiserver-proxy", []string{bin, "-host", "127.0.0.1", "-port", strconv.Itoa(admin),
		"-config", config}, nil); err != nil {
		return err
	}
	return Poll(context.Background(), 10*time.Second, 100*time.Millisecond, func(context.Context) (bool, error) {
		conn, err := net.DialTimeout("tcp", n.HostIP().String()+":443", time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil, err
	})
}

// joinCgroupScript moves the shell into the node's system cgroup in every
// hierarchy before it execs, so the process and all it starts (containerd's
// shims included) belong to the node.
func joinCgroupScript(n *Node) string {
	var b strings.Builder
	for _, h := range cgroupHierarchies() {
		fmt.Fprintf(&b, "echo $$ > %s/%s/system/cgroup.procs && ", h, n.CgroupName())
	}
	return b.String()
}

// holderScript makes the node's mounts in its fresh mount namespace and
// then holds the namespace open.
func holderScript(n *Node) string {
	var b strings.Builder
	b.WriteString(joinCgroupScript(n))
	for key := range kernelDefaults {
		fmt.Fprintf(&b, "mount --bind %s /proc/sys/%s && ", n.sysctlFile(key), key)
	}
	for target, source := range nodeBindMounts {
		fmt.Fprintf(&b, "mount --bind %s %s && ", filepath.Join(n.Dir, source), target)
	}
	b.WriteString("exec sleep infinity")
	return b.String()
}

func (b *Bed) startNodeProcesses(ctx context.Context, n *Node) error {
	bin, err := NodeBinDir()
	if err != nil {
		return err
	}
	// The host side of the bind mounts must exist before the namespace is
	// made; creating empty directories is all it does to the host.
	for target := range nodeBindMounts {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
	}
	if err := b.startNodeProcess(n, "node-ns", []string{"unshare", "--mount", "--propagation", "private",
		"/bin/sh", "-c", holderScript(n)}, nil); err != nil {
		return err
	}
	holder, err := b.nodePID(n, "node-ns")
	if err != nil {
		return err
	}
	// The mounts are made when the holder execs sleep.
	if err := Poll(ctx, 5*time.Second, 100*time.Millisecond, func(context.Context) (bool, error) {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", holder))
		return strings.HasSuffix(exe, "/sleep"), nil
	}); err != nil {
		return fmt.Errorf("node %s: the mount namespace was not made: %w\n%s", n.Name, err, tail(b.nodeLogPath(n, "node-ns")))
	}
	inNode := func() []string {
		return []string{"nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", holder), "--",
			"/bin/sh", "-c", joinCgroupScript(n) + `exec "$@"`, "sh"}
	}
	// containerd finds its shim and runc on PATH; the kubelet gets no
	// /usr/sbin, so it finds no iptables to touch the host's firewall with.
	if err := b.startNodeProcess(n, "containerd", append(inNode(), filepath.Join(bin, "containerd"),
		"--config", filepath.Join(n.Dir, "containerd.toml")),
		[]string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"}); err != nil {
		return err
	}
	if err := waitForFile(n.Socket(), 20*time.Second); err != nil {
		return fmt.Errorf("node %s: containerd did not serve: %w\n%s", n.Name, err, tail(b.nodeLogPath(n, "containerd")))
	}
	// The sandbox image, and the test bed's app, which most tests of a real
	// node run.
	for _, im := range []*Image{PauseImage, AppImage, OperatorImage} {
		if err := b.ImportImage(ctx, n, im); err != nil {
			return err
		}
	}
	// The test bed CSI driver's node service, so pods mount their volumes;
	// the kubelet finds it through its plugins_registry directory.
	driver, err := csiDriverBinary()
	if err != nil {
		return err
	}
	if err := b.startNodeProcess(n, "csi-node", append(inNode(), driver, "--endpoint=unix://"+filepath.Join(n.Dir, "csi.sock"),
		"--driver-name="+CSIDriverName, "--root="+b.StorageDir(n.Cluster), "--node-id="+n.Name,
		"--registration-dir="+filepath.Join(n.Dir, "kubelet", "plugins_registry")), nil); err != nil {
		return err
	}
	if err := b.startNodeProcess(n, "kubelet", append(inNode(), filepath.Join(bin, "kubelet"),
		"--config="+filepath.Join(n.Dir, "kubelet.yaml"),
		"--kubeconfig="+b.KubeconfigPath(n.Cluster),
		"--hostname-override="+n.Name,
		"--node-ip="+n.HostIP().String(),
		"--root-dir="+filepath.Join(n.Dir, "kubelet"),
		"--cert-dir="+filepath.Join(n.Dir, "certs"),
		"--node-labels="+RealNodeLabel+"=true",
		"--register-with-taints="+RealNodeTaint+"=true:NoSchedule",
		"--v=1"), []string{"PATH=" + bin + ":/usr/bin:/bin"}); err != nil {
		return err
	}
	return b.waitNodeReady(ctx, n, 60*time.Second)
}

// startNodeProcess starts one of the node's processes like the storage's.
func (b *Bed) startNodeProcess(n *Node, comp string, argv, env []string) error {
	if err := startDetached(argv, env, b.nodeLogPath(n, comp), b.nodePIDPath(n, comp)); err != nil {
		return fmt.Errorf("node %s: starting %s: %w", n.Name, comp, err)
	}
	return nil
}

func (b *Bed) nodePIDPath(n *Node, comp string) string {
	return filepath.Join(b.Dir, "nodes", n.Cluster+"-"+comp+".pid")
}

// NodeLog returns the end of a real node component's log.
func (b *Bed) NodeLog(n *Node, comp string) string { return tail(b.nodeLogPath(n, comp)) }

func (b *Bed) nodeLogPath(n *Node, comp string) string {
	return filepath.Join(b.Dir, "nodes", n.Cluster+"-"+comp+".log")
}

func (b *Bed) nodePID(n *Node, comp string) (int, error) { return readPID(b.nodePIDPath(n, comp)) }

func (b *Bed) waitNodeReady(ctx context.Context, n *Node, timeout time.Duration) error {
	c, err := b.Cluster(n.Cluster)
	if err != nil {
		return err
	}
	err = Poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var node corev1.Node
		if err := c.Client.Get(ctx, client.ObjectKey{Name: n.Name}, &node); err != nil {
			return false, err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message)
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready: %w\n%s", n.Name, err, tail(b.nodeLogPath(n, "kubelet")))
	}
	return nil
}

// DarkenNode makes a node go dark with its data center: its subnet becomes
// unreachable (clients get an error at once, and no packet leaves) and every
// process of the node, pods included, is frozen where it stands.
func (b *Bed) DarkenNode(cluster string) error {
	n, err := b.Node(cluster)
	if err != nil || n == nil {
		return err
	}
	if err := run("ip", "route", "replace", "unreachable", n.Subnet().String()); err != nil {
		return err
	}
	return setFrozen(n, true)
}

// LightNode brings a dark node back: its processes thaw, its pods serve
// again and its kubelet reports to the data center's API server.
func (b *Bed) LightNode(cluster string) error {
	n, err := b.Node(cluster)
	if err != nil || n == nil {
		return err
	}
	if err := setFrozen(n, false); err != nil {
		return err
	}
	return run("ip", "route", "replace", n.Subnet().String(), "dev", n.Bridge(),
		"proto", "kernel", "scope", "link", "src", n.HostIP().String())
}

func setFrozen(n *Node, frozen bool) error {
	state := "THAWED"
	if frozen {
		state = "FROZEN"
	}
	path := filepath.Join("/sys/fs/cgroup/freezer", n.CgroupName(), "freezer.state")
	if err := os.WriteFile(path, []byte(state), 0o644); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return Poll(context.Background(), 10*time.Second, 100*time.Millisecond, func(context.Context) (bool, error) {
		got, _ := os.ReadFile(path)
		return strings.TrimSpace(string(got)) == state, nil
	})
}

// DeleteNode stops a data center's real node and removes everything it
// made: every process in its cgroup is killed (the mount namespace and its
// mounts go with the last one), then the cgroups, the bridge and the
// node's directory are removed.
func (b *Bed) DeleteNode(cluster string) error {
	n, err := b.Node(cluster)
	if err != nil || n == nil {
		return err
	}
	var errs []error
	if pid, err := b.nodePID(n, "apiserver-proxy"); err == nil {
		errs = append(errs, killAll(map[string]int{"apiserver-proxy": pid}))
	}
	// A frozen process cannot die; thaw first (a node that never started
	// has no cgroup to thaw).
	_ = setFrozen(n, false)
	errs = append(errs, killCgroup(n))
	errs = append(errs, removeCgroup(n))
	if linkExists(n.Bridge()) {
		errs = append(errs, run("ip", "link", "del", n.Bridge()))
	}
	// A dark node left an unreachable route behind.
	_ = run("ip", "route", "del", "unreachable", n.Subnet().String())
	errs = append(errs, os.RemoveAll(n.Dir))
	for _, comp := range append(nodeComponents, "apiserver-proxy") {
		_ = os.Remove(b.nodePIDPath(n, comp))
	}
	errs = append(errs, os.Remove(b.nodeStatePath(cluster)))
	return errors.Join(errs...)
}

// cgroupPIDs lists every process in the node's cgroup tree (the pids
// hierarchy holds all of them, as every other does).
func cgroupPIDs(n *Node) map[string]int {
	pids := map[string]int{}
	root := filepath.Join("/sys/fs/cgroup/pids", n.CgroupName())
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids[f] = pid
			}
		}
		return nil
	})
	return pids
}

func killCgroup(n *Node) error {
	// Processes may fork while they are killed (a shim starting a
	// container), and a killed process stays listed until its parent reaps
	// it: kill what lives until the cgroup is empty.
	deadline := time.Now().Add(20 * time.Second)
	for {
		pids := cgroupPIDs(n)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: processes %v survived", n.Name, pids)
		}
		_ = killAll(pids)
		time.Sleep(100 * time.Millisecond)
	}
}

// removeCgroup removes the node's cgroup trees, deepest first (a cgroup
// goes only once it has no children and no processes).
func removeCgroup(n *Node) error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(h, n.CgroupName()), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func containerdConfig(n *Node) string {
	bin, _ := NodeBinDir()
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[ttrpc]
  address = "%[3]s.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  # NRI listens on a fixed socket path two nodes would share (trap 6).
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.internal.v1.opt']
    path = %[4]q
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    # Pinned, so image GC never removes it.
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %[5]q
  [plugins.'io.containerd.cri.v1.runtime']
    # Root here lacks CAP_SYS_RESOURCE: without this the sandbox asks for
    # oom_score_adj -998 and runc fails (trap 1).
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      Root = %[6]q
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%[7]q]
      conf_dir = %[8]q
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
`, filepath.Join(n.Dir, "containerd/root"), filepath.Join(n.Dir, "containerd/state"), n.Socket(),
		filepath.Join(n.Dir, "containerd/opt"), SandboxImage, filepath.Join(n.Dir, "runc"), bin,
		filepath.Join(n.Dir, "cni/net.d"))
}

// cniConfig: one bridge per node, no default route in the pods and no
// masquerade (trap 7); host-local keeps its leases in the node's directory.
// The one route pods get sends the pod range to the host, where every data
// center's HostIP is a local address: an operator's pod reaches the peer's
// and the witness's API servers. The host forwards nothing (pod to pod
// across nodes would need ip_forward), and no route leads off the machine.
func cniConfig(n *Node) string {
	subnet := n.Subnet()
	first := subnet.Addr().As4()
	first[3] = 32
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "tandem",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": false,
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "dataDir": %q,
      "ranges": [[{"subnet": %q, "rangeStart": %q, "gateway": %q}]],
      "routes": [{"dst": %q, "gw": %q}]
    }
  }]
}
`, n.Bridge(), filepath.Join(n.Dir, "cni/ipam"), subnet.String(), netip.AddrFrom4(first).String(), n.HostIP().String(),
		PodRange, n.HostIP().String())
}

func (b *Bed) kubeletConfig(n *Node) string {
	pki := filepath.Join(b.Dir, "kwok", "clusters", n.Cluster, "pki")
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
# The API server authenticates with the cluster's admin certificate for
# logs and exec; nothing else may call the kubelet.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[4]q}
authorization: {mode: Webhook}
# cgroup v1 hybrid host, cgroupfs, a cgroup root of its own (trap 3).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%[5]s
failSwapOn: false
# Check the sysctls, never write them (trap 2).
protectKernelDefaults: true
containerRuntimeEndpoint: unix://%[6]s
podLogsDir: %[7]q
resolvConf: %[8]q
# The disk is shared with everything else on the machine and reads as
# mostly used: no image GC, no eviction for disk (trap 10).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
staticPodPath: ""
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
`, n.HostIP(), n.KubeletPort, n.HealthzPort, filepath.Join(pki, "ca.crt"), n.CgroupName(), n.Socket(),
		filepath.Join(n.Dir, "pod-logs"), filepath.Join(n.Dir, "resolv.conf"))
}

// PodPID returns a process of a pod running on the node (any process of
// the pod is in the pod's network namespace), found in the pod's cgroup.
func (n *Node) PodPID(podUID string) (int, error) {
	var pid int
	root := filepath.Join("/sys/fs/cgroup/pids", n.CgroupName(), "kubepods")
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || pid != 0 || d.IsDir() || d.Name() != "cgroup.procs" ||
			!strings.Contains(path, "/pod"+podUID+"/") {
			return nil
		}
		data, _ := os.ReadFile(path)
		if f := strings.Fields(string(data)); len(f) > 0 {
			pid, _ = strconv.Atoi(f[0])
		}
		return nil
	})
	if pid == 0 {
		return 0, fmt.Errorf("node %s: no process of pod %s in its cgroup", n.Name, podUID)
	}
	return pid, nil
}
