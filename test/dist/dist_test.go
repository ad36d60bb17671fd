// Package dist tests the kubectl plugin's release: the archive `make dist`
// builds, its checksum, and the krew manifest that installs it.
package dist

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/test/testbed"
)

// krewPlugin is krew's Plugin manifest, v1alpha2 (sigs.k8s.io/krew
// pkg/index, v0.4.3). Krew's module is not imported: it requires
// k8s.io/client-go v11.0.0+incompatible, which would replace this
// project's client-go.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Caveats          string `json:"caveats"`
		Homepage         string `json:"homepage"`
		Platforms        []struct {
			URI      string `json:"uri"`
			Sha256   string `json:"sha256"`
			Selector *struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Files []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
			Bin string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// The release for this machine's platform: an archive with the plugin and
// its completion helper, both executable; the checksum in checksums.txt
// and in the krew manifest is the archive's; the binary inside runs and
// says its version; a second build gives the same bytes.
func TestDistBuildsWhatKrewInstalls(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	build := func() string {
		dir := t.TempDir()
		cmd := exec.Command("bash", filepath.Join(testbed.RepoRoot(), "hack", "dist.sh"))
		cmd.Env = append(os.Environ(), "VERSION=v0.2.0", "PLATFORMS="+platform, "DIST="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hack/dist.sh: %v\n%s", err, out)
		}
		return dir
	}
	dist := build()
	name := "kubectl-tandem_v0.2.0_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	data, err := os.ReadFile(filepath.Join(dist, name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	sums, err := os.ReadFile(filepath.Join(dist, "checksums.txt"))
	if err != nil || strings.TrimSpace(string(sums)) != want+"  "+name {
		t.Fatalf("checksums.txt = %q (%v), want %s  %s", sums, err, want, name)
	}

	raw, err := os.ReadFile(filepath.Join(dist, "tandem.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Krew's own fields: one krew does not know is an error.
	var m krewPlugin
	if err := yaml.UnmarshalStrict(raw, &m); err != nil {
		t.Fatalf("the krew manifest does not parse: %v\n%s", err, raw)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "tandem" ||
		m.Spec.Version != "v0.2.0" || m.Spec.ShortDescription == "" || len(m.Spec.Platforms) != 1 {
		t.Fatalf("krew manifest %+v", m)
	}
	p := m.Spec.Platforms[0]
	if p.Sha256 != want || !strings.HasSuffix(p.URI, "/v0.2.0/"+name) || p.Bin != "kubectl-tandem" || p.Selector == nil ||
		p.Selector.MatchLabels["os"] != runtime.GOOS || p.Selector.MatchLabels["arch"] != runtime.GOARCH {
		t.Fatalf("krew platform %+v, want sha256 %s and %s", p, want, name)
	}

	bin := t.TempDir()
	files := untar(t, data, bin)
	for _, f := range p.Files {
		if files[f.From]&0o111 == 0 {
			t.Fatalf("the archive's %s is missing or not executable (files %v)", f.From, files)
		}
	}
	out, err := exec.Command(filepath.Join(bin, "kubectl-tandem"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v0.2.0") {
		t.Fatalf("kubectl-tandem --version: %v: %s", err, out)
	}

	again, err := os.ReadFile(filepath.Join(build(), name))
	if err != nil || sha256.Sum256(again) != sum {
		t.Fatalf("a second build of the same commit gave different bytes (%v)", err)
	}
}

// untar extracts a tar.gz into dir and returns each file's mode.
func untar(t *testing.T, data []byte, dir string) map[string]os.FileMode {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	modes := map[string]os.FileMode{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return modes
		}
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(h.Mode)
		modes[h.Name] = mode
		f, err := os.OpenFile(filepath.Join(dir, filepath.Base(h.Name)), os.O_CREATE|os.O_WRONLY, mode)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
}
