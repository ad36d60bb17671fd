// Package imagebuild builds container images from static Go binaries with
// go-containerregistry, the way ko does: no Docker engine, no base image to
// pull, nothing but the binary on an empty image. The result is
// reproducible: the same binary gives the same digest, because the layer's
// file times and the image's creation time are fixed.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRoot is the user the operator image runs as: distroless's nonroot, so
// runAsNonRoot admits the pod without a runAsUser.
const NonRoot = "65532:65532"

// Options describe an image of one binary.
type Options struct {
	// Binary is the static executable to put in the image.
	Binary string
	// Path is where it lands in the image, and the entrypoint.
	Path string
	// User the process runs as ("uid:gid"); root when empty.
	User string
	// Arch is the image's architecture (GOARCH).
	Arch string
	// Labels are the image config's labels (org.opencontainers.image.*).
	Labels map[string]string
}

// Build returns the image.
func Build(o Options) (v1.Image, error) {
	if o.Binary == "" || o.Path == "" || !path.IsAbs(o.Path) || o.Arch == "" {
		return nil, fmt.Errorf("imagebuild: Binary, an absolute Path and Arch are required")
	}
	data, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	layer, err := fileLayer(o.Path[1:], data)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", o.Arch
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint = []string{o.Path}
	cfg.Config.User = o.User
	cfg.Config.Labels = o.Labels
	return mutate.ConfigFile(img, cfg)
}

// fileLayer is a layer holding one executable, with a fixed time.
func fileLayer(name string, data []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg,
		ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil })
}

// GoBuild builds a command of the module in moduleDir as a static linux
// binary into dir, with the flags that keep it reproducible (no paths, no
// build id), and returns its path.
func GoBuild(moduleDir, pkg, dir, arch string) (string, error) {
	bin := path.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", bin, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// Operator builds the operator's image from the checkout in moduleDir:
// what `make image` ships and what the test bed's real nodes run.
func Operator(moduleDir, tmp, arch string) (v1.Image, error) {
	bin, err := GoBuild(moduleDir, "./cmd/tandem-operator", tmp, arch)
	if err != nil {
		return nil, err
	}
	return Build(Options{Binary: bin, Path: "/tandem-operator", User: NonRoot, Arch: arch,
		Labels: map[string]string{"org.opencontainers.image.source": "https://github.com/tandem-dev/tandem",
			"org.opencontainers.image.title": "tandem-operator"}})
}
