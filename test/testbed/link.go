package testbed

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Link is one side's network path to another cluster's API server: a
// toxiproxy TCP proxy, run in the test's process, that the test can cut
// and heal. A cut drops traffic both ways without closing connections, the
// way a partition looks to the side that waits (requests time out), not
// the way a stopped server does (connection refused).
type Link struct {
	Name  string
	Addr  string
	proxy *toxiproxy.Proxy
	cut   bool
}

var toxiServer = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())

// NewLink starts a link on a free port of 127.0.0.1 to upstream (host:port).
func NewLink(name, upstream string) (*Link, error) {
	p := toxiproxy.NewProxy(toxiServer, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("starting link %s: %w", name, err)
	}
	return &Link{Name: name, Addr: p.Listen, proxy: p}, nil
}

// LinkTo starts a link to cluster c's API server.
func LinkTo(name string, c *Cluster) (*Link, error) {
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	server, err := currentServer(cfg)
	if err != nil {
		return nil, err
	}
	return NewLink(name, server.Host)
}

// Cut drops everything on the link, both ways.
func (l *Link) Cut() error {
	if l.cut {
		return nil
	}
	for _, stream := range []string{"upstream", "downstream"} {
		body := fmt.Sprintf(`{"name":"cut-%s","type":"timeout","stream":%q,"attributes":{"timeout":0}}`, stream, stream)
		if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			return fmt.Errorf("cutting link %s: %w", l.Name, err)
		}
	}
	l.cut = true
	return nil
}

// Heal restores the link. Connections cut earlier stay broken (their
// bytes were dropped); clients reconnect.
func (l *Link) Heal() error {
	if !l.cut {
		return nil
	}
	for _, stream := range []string{"upstream", "downstream"} {
		if err := l.proxy.Toxics.RemoveToxic(context.Background(), "cut-"+stream); err != nil {
			return fmt.Errorf("healing link %s: %w", l.Name, err)
		}
	}
	l.cut = false
	return nil
}

// Close stops the link.
func (l *Link) Close() { l.proxy.Stop() }

// KubeconfigVia returns cluster c's kubeconfig, certificates embedded, with
// its server reached through the link. The API server's certificate is for
// 127.0.0.1, so TLS still verifies.
func (c *Cluster) KubeconfigVia(l *Link) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, err
	}
	server, err := currentServer(cfg)
	if err != nil {
		return nil, err
	}
	server.Host = l.Addr
	cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server = server.String()
	return clientcmd.Write(*cfg)
}

func currentServer(cfg *clientcmdapi.Config) (*url.URL, error) {
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("kubeconfig has no current context")
	}
	cl, ok := cfg.Clusters[ctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("kubeconfig has no cluster %q", ctx.Cluster)
	}
	return url.Parse(cl.Server)
}
