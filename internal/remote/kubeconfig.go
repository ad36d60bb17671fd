// Package remote gives the operator access to the other clusters of a pair
// (the peer and the witness) from kubeconfig Secrets.
package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// DefaultKubeconfigKey is the Secret key read when a reference names none.
const DefaultKubeconfigKey = "kubeconfig"

// Policy says what a kubeconfig from a Secret may use. The defaults refuse
// everything that would let a Secret run code or skip TLS verification in
// the operator's process.
type Policy struct {
	// AllowExec permits exec credential plugins (they run a binary inside the
	// operator's container).
	AllowExec bool
	// AllowInsecure permits insecure-skip-tls-verify and a plain http
	// server.
	AllowInsecure bool
	// AllowProxy permits proxy-url: through a proxy the operator's
	// requests, credentials included, go where the kubeconfig's author
	// chose.
	AllowProxy bool
	// Timeout of every request; 10s when zero.
	Timeout time.Duration
	// QPS and Burst of the client; 1000 and 2000 when zero, because the
	// sync engine applies thousands of objects and client-go's default of
	// 5 QPS would make it crawl. The peer's API priority and fairness still
	// protects it.
	QPS   float32
	Burst int
}

// InvalidKubeconfigError is a kubeconfig Secret the user must fix; the
// message names the Secret and the problem but never its content.
type InvalidKubeconfigError struct {
	Secret string
	Reason string
}

func (e *InvalidKubeconfigError) Error() string {
	return fmt.Sprintf("kubeconfig Secret %s: %s", e.Secret, e.Reason)
}

// IsInvalidKubeconfig reports whether err is an InvalidKubeconfigError.
func IsInvalidKubeconfig(err error) bool {
	var e *InvalidKubeconfigError
	return errors.As(err, &e)
}

// ConfigFromSecret reads the kubeconfig a reference names, in namespace, and
// returns a client config for its current context.
func ConfigFromSecret(ctx context.Context, c client.Reader, namespace string, ref tandemv1.SecretKeyRef, p Policy) (*rest.Config, error) {
	key := ref.Key
	if key == "" {
		key = DefaultKubeconfigKey
	}
	name := namespace + "/" + ref.Name
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &InvalidKubeconfigError{Secret: name, Reason: "not found"}
		}
		return nil, fmt.Errorf("reading kubeconfig Secret %s: %w", name, err)
	}
	data, ok := secret.Data[key]
	if !ok || len(data) == 0 {
		return nil, &InvalidKubeconfigError{Secret: name, Reason: fmt.Sprintf("has no key %q", key)}
	}
	cfg, err := parseCached(data, p)
	if err != nil {
		return nil, &InvalidKubeconfigError{Secret: name, Reason: err.Error()}
	}
	return cfg, nil
}

// parsedKey is a kubeconfig's content and the policy it was parsed under.
type parsedKey struct {
	sum [sha256.Size]byte
	p   Policy
}

// parsed holds ParseKubeconfig's results. Every reconcile of every pair
// reads its peer's kubeconfig, and parsing the YAML anew each time was a
// tenth of the operator's CPU at 50 pairs (docs/benchmarks.md). Keyed by
// content, an edited Secret is parsed again; the map is emptied when full
// rather than tracking which kubeconfigs are still in use.
var parsed = struct {
	sync.Mutex
	m map[parsedKey]*rest.Config
}{m: map[parsedKey]*rest.Config{}}

const maxParsed = 4096

// parseCached is ParseKubeconfig through the parsed cache. Callers get
// their own copy: they set timeouts and rate limits on it.
func parseCached(data []byte, p Policy) (*rest.Config, error) {
	key := parsedKey{sum: sha256.Sum256(data), p: p}
	parsed.Lock()
	cfg, ok := parsed.m[key]
	parsed.Unlock()
	if ok {
		return rest.CopyConfig(cfg), nil
	}
	cfg, err := ParseKubeconfig(data, p)
	if err != nil {
		return nil, err
	}
	parsed.Lock()
	if len(parsed.m) >= maxParsed {
		clear(parsed.m)
	}
	parsed.m[key] = rest.CopyConfig(cfg)
	parsed.Unlock()
	return cfg, nil
}

// ParseKubeconfig turns kubeconfig bytes into a client config, refusing what
// the policy does not allow.
func ParseKubeconfig(data []byte, p Policy) (*rest.Config, error) {
	raw, err := clientcmd.Load(data)
	if err != nil {
		// The parser's error can quote the input; say only what is wrong.
		return nil, errors.New("is not a valid kubeconfig")
	}
	ctxName := raw.CurrentContext
	kctx, ok := raw.Contexts[ctxName]
	if !ok {
		if len(raw.Contexts) != 1 {
			return nil, fmt.Errorf("has no current-context and %d contexts", len(raw.Contexts))
		}
		for n, c := range raw.Contexts {
			ctxName, kctx = n, c
		}
	}
	cluster, ok := raw.Clusters[kctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("context %q names cluster %q, which is not defined", ctxName, kctx.Cluster)
	}
	if cluster.Server == "" {
		return nil, fmt.Errorf("cluster %q has no server", kctx.Cluster)
	}
	if u, err := url.Parse(cluster.Server); err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !p.AllowInsecure)) {
		return nil, fmt.Errorf("cluster %q: server must be an https URL (plain http only with the operator's --allow-insecure-kubeconfig)", kctx.Cluster)
	}
	if cluster.ProxyURL != "" && !p.AllowProxy {
		return nil, fmt.Errorf("cluster %q sets proxy-url, which the operator refuses (--allow-kubeconfig-proxy)", kctx.Cluster)
	}
	if cluster.InsecureSkipTLSVerify && !p.AllowInsecure {
		return nil, fmt.Errorf("cluster %q sets insecure-skip-tls-verify, which the operator refuses (--allow-insecure-kubeconfig)", kctx.Cluster)
	}
	if cluster.CertificateAuthority != "" {
		return nil, fmt.Errorf("cluster %q reads certificate-authority from a file; embed certificate-authority-data instead", kctx.Cluster)
	}
	if user, ok := raw.AuthInfos[kctx.AuthInfo]; ok {
		switch {
		case user.Exec != nil && !p.AllowExec:
			return nil, fmt.Errorf("user %q uses an exec credential plugin (%s), which the operator refuses (--allow-kubeconfig-exec)", kctx.AuthInfo, user.Exec.Command)
		case user.AuthProvider != nil:
			return nil, fmt.Errorf("user %q uses an auth-provider plugin, which the operator refuses", kctx.AuthInfo)
		case user.ClientCertificate != "" || user.ClientKey != "" || user.TokenFile != "":
			return nil, fmt.Errorf("user %q reads credentials from files; embed client-certificate-data, client-key-data or token instead", kctx.AuthInfo)
		}
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, ctxName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot be used: %v", err)
	}
	cfg.Timeout = p.Timeout
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.QPS, cfg.Burst = p.QPS, p.Burst
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 1000, 2000
	}
	return cfg, nil
}

// Fingerprint identifies a client config by its endpoint and credentials
// (hashed, never shown), so a sync restarts when its kubeconfig Secret
// changes.
func Fingerprint(cfg *rest.Config) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(cfg.Host), []byte(cfg.BearerToken), cfg.CertData, cfg.KeyData, cfg.CAData, []byte(cfg.Username), []byte(cfg.Password)} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
