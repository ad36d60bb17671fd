package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// GrantDNSNames is what a platform team does before a namespace's pairs
// may point names through external-dns: it annotates Namespace ns on the
// cluster c reaches with tandem.dev/dns-names, creating the Namespace if
// need be. Each data center judges its own grants, so a pair's names are
// granted on both. It replaces any earlier grant of the namespace.
func GrantDNSNames(ctx context.Context, c client.Client, ns string, names ...string) error {
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if err := c.Create(ctx, obj); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating Namespace %s: %w", ns, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		"tandem.dev/dns-names": strings.Join(names, ","),
	}}})
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("granting DNS names on Namespace %s: %w", ns, err)
	}
	return nil
}

// externalDNSModule holds the DNSEndpoint CRD the test bed installs.
const externalDNSModule = "sigs.k8s.io/external-dns"

// externalDNSComponents are the two external-dns instances of a data
// center, as docs/traffic.md describes them: the ordinary one (owner id =
// the data center) and the flip one, which reads only the DNSEndpoints
// labelled tandem.dev/dns-flip, under the owner id both data centers share.
var externalDNSComponents = []string{"external-dns", "external-dns-flip"}

// FlipOwnerID is the TXT owner id of both data centers' flip instances.
const FlipOwnerID = "tandem"

// ExternalDNSOptions configure a data center's external-dns.
type ExternalDNSOptions struct {
	// DNS is the authoritative server they update.
	DNS DNSServer
	// Interval between syncs; 1s when zero.
	Interval time.Duration
}

// DNSServer is what a test or the demo needs to know of the test bed's
// BIND: where it listens, its zone and its TSIG key.
type DNSServer struct {
	Addr, Zone, KeyName, Secret string
	// PodAddr is where pods (an operator running as one) reach it; empty
	// unless the bed has real nodes.
	PodAddr string
	PID     int
}

// ExternalDNSBinDir returns the directory holding external-dns v0.21.0,
// built once into the cache. It honours TANDEM_TESTBED_DNS_BIN.
func ExternalDNSBinDir() (string, error) { return externalDNSBins.path() }

var externalDNSBins = &cachedBins{env: "TANDEM_TESTBED_DNS_BIN", what: "external-dns", args: []string{"external-dns"}}

// StartDNS runs the test bed's authoritative DNS server (BIND) for zone.
// It outlives the caller, like the clusters; StopDNS (and Down) stop it.
// In a bed with real nodes it also listens on an address of the pod
// network of its own (it belongs to neither data center), where the
// operators' pods verify the records they publish.
func (b *Bed) StartDNS(zone string) (DNSServer, error) {
	dir := filepath.Join(b.Dir, "dns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return DNSServer{}, err
	}
	podIP := ""
	if len(b.nodeSites()) > 0 {
		n, err := b.AllocateNode(dnsSite)
		if err != nil {
			return DNSServer{}, err
		}
		podIP = n.HostIP().String()
	}
	bind, err := StartBIND(dir, zone, podIP)
	if err != nil {
		return DNSServer{}, errors.Join(err, b.DeleteNode(dnsSite))
	}
	srv := DNSServer{Addr: bind.Addr, PodAddr: bind.PodAddr, Zone: zone, KeyName: bind.KeyName, Secret: bind.Secret, PID: bind.cmd.Process.Pid}
	if err := writeJSON(filepath.Join(dir, "server.json"), srv); err != nil {
		bind.Stop()
		return DNSServer{}, err
	}
	return srv, nil
}

// DNS returns the running DNS server of the bed.
func (b *Bed) DNS() (DNSServer, error) {
	var srv DNSServer
	found, err := readJSON(filepath.Join(b.Dir, "dns", "server.json"), &srv)
	if err == nil && !found {
		err = fmt.Errorf("the test bed runs no DNS server (testbed up -dns)")
	}
	return srv, err
}

// StopDNS stops the bed's DNS server, by PID.
func (b *Bed) StopDNS() error {
	srv, err := b.DNS()
	if err != nil {
		return nil
	}
	_ = os.Remove(filepath.Join(b.Dir, "dns", "server.json"))
	if srv.PID > 0 && ProcessAlive(srv.PID) {
		err = killAll(map[string]int{"named": srv.PID})
	}
	return errors.Join(err, b.DeleteNode(dnsSite))
}

// dnsSite names the DNS server's share of the pod network.
const dnsSite = "dns"

// StartExternalDNS installs the DNSEndpoint CRD into data center name and
// runs its two external-dns instances against opts.DNS with the rfc2136
// provider. Stop, Start and Delete of the cluster stop and start them with
// it.
func (b *Bed) StartExternalDNS(ctx context.Context, name string, opts ExternalDNSOptions) error {
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	c, err := b.Cluster(name)
	if err != nil {
		return err
	}
	if err := installDNSEndpointCRD(ctx, c.Client); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	if err := writeJSON(b.externalDNSConfigPath(name), opts); err != nil {
		return err
	}
	return b.startExternalDNSProcesses(name, opts)
}

// ExternalDNSLog returns the last part of the log of a data center's
// external-dns instance (comp: "external-dns" or "external-dns-flip"),
// for a failing test to show.
func (b *Bed) ExternalDNSLog(name, comp string) string { return tail(b.storageLogPath(name, comp)) }

func (b *Bed) externalDNSConfigPath(name string) string {
	return filepath.Join(b.storageRunDir(), name+"-external-dns.json")
}

func (b *Bed) startExternalDNSProcesses(name string, opts ExternalDNSOptions) error {
	dir, err := ExternalDNSBinDir()
	if err != nil {
		return err
	}
	host, port, _ := strings.Cut(opts.DNS.Addr, ":")
	common := []string{
		filepath.Join(dir, "external-dns"), "--kubeconfig=" + b.KubeconfigPath(name),
		"--source=crd", "--crd-source-apiversion=externaldns.k8s.io/v1alpha1", "--crd-source-kind=DNSEndpoint",
		"--provider=rfc2136", "--rfc2136-host=" + host, "--rfc2136-port=" + port, "--rfc2136-zone=" + opts.DNS.Zone,
		"--rfc2136-tsig-keyname=" + opts.DNS.KeyName, "--rfc2136-tsig-secret=" + opts.DNS.Secret,
		"--rfc2136-tsig-secret-alg=hmac-sha256", "--rfc2136-tsig-axfr", "--domain-filter=" + opts.DNS.Zone,
		"--registry=txt", "--interval=" + opts.Interval.String(),
	}
	for _, comp := range externalDNSComponents {
		metrics, err := FreePort()
		if err != nil {
			return err
		}
		argv := append(append([]string{}, common...), "--metrics-address=127.0.0.1:"+strconv.Itoa(metrics))
		if comp == "external-dns" {
			// The data center's own names (a drill's among them); never
			// Tandem's flip endpoints, or it could create a name under
			// its own owner id first.
			argv = append(argv, "--txt-owner-id="+name, "--policy=sync", "--label-filter=tandem.dev/dns-flip!=true")
		} else {
			// The pairs' names: shared with the other data center's flip
			// instance, only from the flip endpoints, and never deleted.
			argv = append(argv, "--txt-owner-id="+FlipOwnerID, "--policy=upsert-only", "--label-filter=tandem.dev/dns-flip=true")
		}
		if err := b.startProcess(name, comp, argv); err != nil {
			_ = b.stopStorage(name)
			return err
		}
	}
	return nil
}

// installDNSEndpointCRD applies external-dns's DNSEndpoint CRD from the
// module cache and waits until it is established.
func installDNSEndpointCRD(ctx context.Context, c client.Client) error {
	dir, err := externalDNSModuleDir()
	if err != nil {
		return err
	}
	return installCRDs(ctx, c, filepath.Join(dir, "config", "crd", "standard", "dnsendpoints.externaldns.k8s.io.yaml"))
}

// externalDNSModuleDir finds external-dns v0.21.0 in the module cache,
// downloading it when needed: it is a tool of the test bed, not a
// dependency of Tandem's module.
func externalDNSModuleDir() (string, error) { return downloadModule(externalDNSModule + "@v0.21.0") }

// gatewayAPIModule is the Gateway API release external-dns v0.21.0 builds
// against; its CRDs give the tests HTTPRoutes.
const gatewayAPIModule = "sigs.k8s.io/gateway-api@v1.5.1"

// InstallGatewayAPICRDs installs the Gateway API's Gateway and HTTPRoute
// CRDs (standard channel) and waits until they are established.
func InstallGatewayAPICRDs(ctx context.Context, c client.Client) error {
	dir, err := downloadModule(gatewayAPIModule)
	if err != nil {
		return err
	}
	std := filepath.Join(dir, "config", "crd", "standard")
	return installCRDs(ctx, c, filepath.Join(std, "gateway.networking.k8s.io_gateways.yaml"),
		filepath.Join(std, "gateway.networking.k8s.io_httproutes.yaml"))
}

// downloadModule returns where module@version sits in the module cache,
// downloading it from the proxy when it is not there yet.
func downloadModule(modVersion string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	var mod struct{ Dir string }
	if err == nil {
		err = json.Unmarshal(out, &mod)
	}
	if err != nil || mod.Dir == "" {
		return "", fmt.Errorf("locating %s in the module cache: %v %s", modVersion, err, out)
	}
	return mod.Dir, nil
}
