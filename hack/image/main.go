// Command image builds the operator's container image from this checkout,
// without a Docker engine (go-containerregistry, as ko does): the static
// binary of ./cmd/tandem-operator on an empty image, run as distroless's
// nonroot user. The same commit gives the same digest.
//
//	go run ./hack/image [-o bin/tandem-operator.tar] [-tag REF] [-push]
//
// The tarball loads with `ctr images import`, `docker load` or `podman
// load`; -push writes the image to the registry in -tag with the
// credentials of ~/.docker/config.json.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tandem-dev/tandem/internal/imagebuild"
)

func main() {
	out := flag.String("o", "bin/tandem-operator.tar", "Write the image as a tarball here.")
	tag := flag.String("tag", "ghcr.io/tandem-dev/tandem-operator:dev", "The image's reference.")
	push := flag.Bool("push", false, "Also push the image to the registry of -tag.")
	arch := flag.String("arch", runtime.GOARCH, "The image's architecture.")
	flag.Parse()
	if err := run(*out, *tag, *arch, *push); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(out, tag, arch string, push bool) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", tag, err)
	}
	dir, err := os.MkdirTemp("", "tandem-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img, err := imagebuild.Operator(".", dir, arch)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s written to %s\n", ref, digest, out)
	if push {
		if err := remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		fmt.Printf("pushed %s\n", ref)
	}
	return nil
}
