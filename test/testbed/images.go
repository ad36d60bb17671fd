package testbed

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is a container image the test bed builds from a command of this
// module: the static binary as the one layer of an empty image, written as
// a tarball that containerd imports (no registry, no Docker engine). Refs
// use a dotted domain, so nothing is normalised to docker.io, and pods run
// them with imagePullPolicy Never or IfNotPresent.
type Image struct {
	Ref string
	// Pkg is the Go package of the command; it lands at /<base of Pkg>.
	Pkg string

	once    sync.Once
	tarball string
	err     error
}

// The images of the test bed.
var (
	PauseImage    = &Image{Ref: SandboxImage, Pkg: "./test/images/pause"}
	AppImage      = &Image{Ref: "tandem.local/app:v1", Pkg: "./test/app"}
	OperatorImage = &Image{Ref: "tandem.local/tandem-operator:dev", Pkg: "./cmd/tandem-operator"}
)

// Entrypoint is the image's command.
func (im *Image) Entrypoint() string { return "/" + filepath.Base(im.Pkg) }

// Tarball builds the image once per test process and returns its path.
func (im *Image) Tarball() (string, error) {
	im.once.Do(func() { im.tarball, im.err = im.build() })
	return im.tarball, im.err
}

func (im *Image) build() (string, error) {
	dir, err := os.MkdirTemp("", "tandem-image-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(im.Pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, im.Pkg)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s for image %s: %w\n%s", im.Pkg, im.Ref, err, out)
	}
	layer, err := binaryLayer(bin, im.Entrypoint())
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Entrypoint = []string{im.Entrypoint()}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	ref, err := name.NewTag(im.Ref)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "image.tar")
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return "", fmt.Errorf("writing image %s: %w", im.Ref, err)
	}
	return out, nil
}

// binaryLayer is a layer holding one executable at path.
func binaryLayer(bin, path string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path[1:], Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
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

// ImportImage builds an image (once per process) and imports it into a
// real node's containerd, where the kubelet finds it without a pull.
func (b *Bed) ImportImage(ctx context.Context, n *Node, im *Image) error {
	path, err := im.Tarball()
	if err != nil {
		return err
	}
	bin, err := NodeBinDir()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "ctr"), "--address", n.Socket(), "--namespace", "k8s.io",
		"images", "import", "--local", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("node %s: importing image %s: %w\n%s", n.Name, im.Ref, err, out)
	}
	return nil
}
