package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tandem-dev/tandem/internal/imagebuild"
)

// Image is a container image the test bed builds from a command of this
// module with internal/imagebuild: the static binary on an empty image,
// written as a tarball that containerd imports (no registry, no Docker
// engine). Refs use a dotted domain, so nothing is normalised to docker.io,
// and pods run them with imagePullPolicy Never or IfNotPresent.
type Image struct {
	Ref string
	// Pkg is the Go package of the command; it lands at /<base of Pkg>.
	Pkg string
	// User the image runs as.
	User string

	once    sync.Once
	tarball string
	err     error
}

// The images of the test bed. The operator's is built exactly as `make
// image` builds it.
var (
	PauseImage    = &Image{Ref: SandboxImage, Pkg: "./test/images/pause"}
	AppImage      = &Image{Ref: "tandem.local/app:v1", Pkg: "./test/app"}
	OperatorImage = &Image{Ref: "tandem.local/tandem-operator:dev", Pkg: "./cmd/tandem-operator", User: imagebuild.NonRoot}
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
	var img v1.Image
	if im == OperatorImage {
		img, err = imagebuild.Operator(RepoRoot(), dir, runtime.GOARCH)
	} else {
		var bin string
		if bin, err = imagebuild.GoBuild(RepoRoot(), im.Pkg, dir, runtime.GOARCH); err == nil {
			img, err = imagebuild.Build(imagebuild.Options{Binary: bin, Path: im.Entrypoint(), User: im.User, Arch: runtime.GOARCH})
		}
	}
	if err != nil {
		return "", fmt.Errorf("image %s: %w", im.Ref, err)
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

// ImportImage builds an image (once per process) and imports it into a
// real node's containerd, where the kubelet finds it without a pull.
func (b *Bed) ImportImage(ctx context.Context, n *Node, im *Image) error {
	path, err := im.Tarball()
	if err != nil {
		return err
	}
	return b.ImportTarball(ctx, n, path)
}

// ImportTarball imports an image tarball (docker save or OCI layout, as
// `make image` writes) into a real node's containerd.
func (b *Bed) ImportTarball(ctx context.Context, n *Node, path string) error {
	bin, err := NodeBinDir()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "ctr"), "--address", n.Socket(), "--namespace", "k8s.io",
		"images", "import", "--local", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("node %s: importing image %s: %w\n%s", n.Name, path, err, out)
	}
	return nil
}
