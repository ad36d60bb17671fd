package remote

import (
	"strings"
	"testing"
)

const good = `apiVersion: v1
kind: Config
current-context: west
clusters:
- name: west
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: ""}
contexts:
- name: west
  context: {cluster: west, user: tandem}
users:
- name: tandem
  user: {token: abc}
`

func TestParseKubeconfig(t *testing.T) {
	cases := []struct {
		name    string
		data    string
		policy  Policy
		wantErr string
	}{
		{"valid", good, Policy{}, ""},
		{"garbage", "{{{not yaml", Policy{}, "is not a valid kubeconfig"},
		{"exec plugin", strings.Replace(good, "user: {token: abc}", "user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}", 1), Policy{}, `uses an exec credential plugin (aws)`},
		{"exec allowed", strings.Replace(good, "user: {token: abc}", "user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: aws, interactiveMode: Never}}", 1), Policy{AllowExec: true}, ""},
		{"insecure", strings.Replace(good, `certificate-authority-data: ""`, "insecure-skip-tls-verify: true", 1), Policy{}, "insecure-skip-tls-verify"},
		{"insecure allowed", strings.Replace(good, `certificate-authority-data: ""`, "insecure-skip-tls-verify: true", 1), Policy{AllowInsecure: true}, ""},
		{"token file", strings.Replace(good, "token: abc", "tokenFile: /var/run/token", 1), Policy{}, "reads credentials from files"},
		{"CA file", strings.Replace(good, `certificate-authority-data: ""`, "certificate-authority: /etc/ca.crt", 1), Policy{}, "reads certificate-authority from a file"},
		{"no server", strings.Replace(good, `server: "https://127.0.0.1:6443", `, "", 1), Policy{}, "has no server"},
		{"plain http", strings.Replace(good, "https://", "http://", 1), Policy{}, "server must be an https URL"},
		{"plain http allowed", strings.Replace(good, "https://", "http://", 1), Policy{AllowInsecure: true}, ""},
		{"no scheme", strings.Replace(good, "https://", "", 1), Policy{}, "server must be an https URL"},
		{"proxy", strings.Replace(good, `certificate-authority-data: ""`, `proxy-url: "http://proxy.example:3128"`, 1), Policy{}, "sets proxy-url, which the operator refuses"},
		{"proxy allowed", strings.Replace(good, `certificate-authority-data: ""`, `proxy-url: "http://proxy.example:3128"`, 1), Policy{AllowProxy: true}, ""},
		{"dangling context", strings.Replace(good, "context: {cluster: west", "context: {cluster: east", 1), Policy{}, `names cluster "east", which is not defined`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseKubeconfig([]byte(tc.data), tc.policy)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				if cfg.Timeout == 0 || cfg.QPS < 100 {
					t.Errorf("timeout %s, QPS %v: defaults not applied", cfg.Timeout, cfg.QPS)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
			if strings.Contains(err.Error(), "abc") {
				t.Fatalf("the error leaks the token: %v", err)
			}
		})
	}
}
