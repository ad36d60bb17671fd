package imagebuild

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestTheSameBinaryGivesTheSameDigest(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "op")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{Binary: bin, Path: "/tandem-operator", User: NonRoot, Arch: "amd64",
		Labels: map[string]string{"org.opencontainers.image.source": "https://github.com/tandem-dev/tandem"}}
	first, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	// A later build, with the file touched: nothing of the time gets in.
	if err := os.Chtimes(bin, epoch, epoch); err != nil {
		t.Fatal(err)
	}
	second, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of one binary: %s and %s", d1, d2)
	}
	cfg, err := first.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != NonRoot || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/tandem-operator" ||
		cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Fatalf("config = user %q entrypoint %v %s/%s", cfg.Config.User, cfg.Config.Entrypoint, cfg.OS, cfg.Architecture)
	}

	// A different binary is a different image.
	if err := os.WriteFile(bin, []byte("#!binary v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	third, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	if d3, _ := third.Digest(); d3 == d1 {
		t.Fatal("a changed binary kept the image's digest")
	}
}

func TestBuildNamesWhatIsMissing(t *testing.T) {
	if _, err := Build(Options{Binary: "x", Path: "relative", Arch: "amd64"}); err == nil {
		t.Fatal("a relative path was accepted")
	}
}
