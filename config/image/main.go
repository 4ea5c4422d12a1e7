// Command image builds the nri-memqos container image without a container
// engine: one layer holding the static plugin binary and its default
// configuration, written as an OCI image layout tarball (oci-layout,
// index.json, blobs/) that `ctr -n k8s.io images import` (and `docker load`,
// `podman load`, `skopeo copy oci-archive:`) accepts.
//
//	go run ./config/image -binary bin/nri-memqos -config config/nri-memqos.yaml \
//	    -tag localhost/nri-memqos:dev -o _output/nri-memqos-image.tar
//
// The output is reproducible: every timestamp is SOURCE_DATE_EPOCH (when set)
// or the Unix epoch, owners are 0:0, entries are in a fixed order, so the
// same inputs give the same bytes and the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside the image and the default command. The DaemonSet in
// config/deploy overrides the arguments, not the entrypoint.
const (
	binaryPath = "/usr/bin/nri-memqos"
	configPath = "/etc/nri-memqos/nri-memqos.yaml"

	// annotationImageName names the image for containerd's importer
	// (images.AnnotationImageName); ctr, docker load and nerdctl use it as is.
	annotationImageName = "io.containerd.image.name"
	// annotationRefName is the OCI image layout's own reference annotation;
	// like BuildKit, it carries the tag only.
	annotationRefName = "org.opencontainers.image.ref.name"
)

var (
	entrypoint = []string{binaryPath}
	defaultCmd = []string{"-socket", "/var/run/nri/nri.sock", "-config", configPath, "-state-dir", "/run/nri-memqos"}
)

// options are the inputs of one build.
type options struct {
	Binary  string    // the static plugin binary
	Config  string    // the configuration file shipped at configPath
	Tag     string    // fully qualified image reference, e.g. localhost/nri-memqos:dev
	Output  string    // the OCI layout tarball to write
	Arch    string    // GOARCH of the binary: amd64 or arm64
	Source  string    // org.opencontainers.image.source
	Version string    // org.opencontainers.image.version ("" = the tag)
	Created time.Time // every timestamp in the image
}

// result is what a build produced.
type result struct {
	Tag            string
	ManifestDigest v1.Hash
	ConfigDigest   v1.Hash
	LayerDigest    v1.Hash
	Size           int64 // of the tarball
}

func main() {
	o := options{}
	flag.StringVar(&o.Binary, "binary", "bin/nri-memqos", "static plugin binary to put at "+binaryPath)
	flag.StringVar(&o.Config, "config", "config/nri-memqos.yaml", "configuration to put at "+configPath)
	flag.StringVar(&o.Tag, "tag", "localhost/nri-memqos:dev", "image reference, fully qualified (registry/repository:tag)")
	flag.StringVar(&o.Output, "o", "_output/nri-memqos-image.tar", "OCI image layout tarball to write")
	flag.StringVar(&o.Arch, "arch", "amd64", "architecture of the binary: amd64 or arm64")
	flag.StringVar(&o.Source, "source", "nri-memqos", "org.opencontainers.image.source label (URL of the sources)")
	flag.StringVar(&o.Version, "version", "", "org.opencontainers.image.version label (default: the tag of -tag)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "image: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	created, err := sourceDateEpoch()
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(2)
	}
	o.Created = created

	r, err := build(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s %s (%d bytes)\n", o.Output, r.Tag, r.ManifestDigest, r.Size)
}

// sourceDateEpoch is the time every timestamp in the image gets:
// SOURCE_DATE_EPOCH (reproducible-builds.org) or the Unix epoch.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: not a non-negative number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// build writes the image tarball described by o.
func build(o options) (result, error) {
	tag, err := name.NewTag(o.Tag, name.StrictValidation)
	if err != nil {
		return result{}, fmt.Errorf("-tag %q: %w (give registry/repository:tag, e.g. localhost/nri-memqos:dev)", o.Tag, err)
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return result{}, fmt.Errorf("-arch %q: allowed: amd64, arm64", o.Arch)
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return result{}, fmt.Errorf("-binary: %w", err)
	}
	if err := checkBinary(bin, o.Arch); err != nil {
		return result{}, fmt.Errorf("-binary %s: %w", o.Binary, err)
	}
	conf, err := os.ReadFile(o.Config)
	if err != nil {
		return result{}, fmt.Errorf("-config: %w", err)
	}
	version := o.Version
	if version == "" {
		version = tag.TagStr()
	}

	layerTar, err := layerTarball(o.Created, bin, conf)
	if err != nil {
		return result{}, err
	}
	img, err := image(o, version, layerTar)
	if err != nil {
		return result{}, err
	}
	return writeLayout(o.Output, img, o.Tag, tag.TagStr(), o.Arch, o.Created)
}

// checkBinary refuses an ELF file of another architecture or one that needs
// a dynamic loader (the image has no libc). Anything else is taken as is:
// the tests use a dummy file.
func checkBinary(b []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		if bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
			return fmt.Errorf("malformed ELF file: %w", err)
		}
		return nil // not ELF
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		return fmt.Errorf("built for %v, the image is %s (%v)", f.Machine, arch, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked; build it with CGO_ENABLED=0")
		}
	}
	return nil
}

// layerTarball is the uncompressed layer: directories, the binary and the
// configuration, root-owned, all at time t.
func layerTarball(t time.Time, bin, conf []byte) ([]byte, error) {
	type entry struct {
		name string
		mode int64
		data []byte
		dir  bool
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/nri-memqos/", mode: 0o755, dir: true},
		{name: "etc/nri-memqos/nri-memqos.yaml", mode: 0o644, data: conf},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/bin/", mode: 0o755, dir: true},
		{name: "usr/bin/nri-memqos", mode: 0o755, data: bin},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			ModTime: t,
			Format:  tar.FormatUSTAR,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// image assembles the OCI image: config, then the one layer (gzip).
func image(o options, version string, layerTar []byte) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	cfg := &v1.ConfigFile{
		Architecture: o.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.Created},
		Config: v1.Config{
			Entrypoint: entrypoint,
			Cmd:        defaultCmd,
			User:       "0",
			WorkingDir: "/",
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "nri-memqos",
				"org.opencontainers.image.description": "NRI plugin giving Kubernetes pods memory quality of service",
				"org.opencontainers.image.source":      o.Source,
				"org.opencontainers.image.version":     version,
			},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	// Append adds the layer's diff ID and this history entry to the config.
	return mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: o.Created},
			CreatedBy: "go run ./config/image",
			Comment:   binaryPath + ", " + configPath,
		},
	})
}

// writeLayout writes img as an OCI image layout tarball at path, atomically.
// The image is named ref verbatim (containerd's names are not normalised
// the way go-containerregistry's are: docker.io stays docker.io).
func writeLayout(path string, img v1.Image, ref, tag, arch string, t time.Time) (result, error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return result{}, fmt.Errorf("manifest: %w", err)
	}
	mDigest, mSize, err := v1.SHA256(bytes.NewReader(manifest))
	if err != nil {
		return result{}, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return result{}, fmt.Errorf("config: %w", err)
	}
	cDigest, err := img.ConfigName()
	if err != nil {
		return result{}, fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return result{}, fmt.Errorf("layers: %w", err)
	}
	if len(layers) != 1 {
		return result{}, fmt.Errorf("image has %d layers, want 1", len(layers))
	}
	lDigest, err := layers[0].Digest()
	if err != nil {
		return result{}, fmt.Errorf("layer: %w", err)
	}
	lr, err := layers[0].Compressed()
	if err != nil {
		return result{}, fmt.Errorf("layer: %w", err)
	}
	layer, err := io.ReadAll(lr)
	if cerr := lr.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return result{}, fmt.Errorf("layer: %w", err)
	}

	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1,
			Size:      mSize,
			Digest:    mDigest,
			Annotations: map[string]string{
				annotationImageName: ref,
				annotationRefName:   tag,
			},
			Platform: &v1.Platform{Architecture: arch, OS: "linux"},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return result{}, err
	}

	blobs := map[v1.Hash][]byte{mDigest: manifest, cDigest: config, lDigest: layer}
	digests := make([]v1.Hash, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i].String() < digests[j].String() })

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return result{}, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return result{}, err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	tw := tar.NewWriter(f)
	add := func(name string, mode int64, data []byte, dir bool) error {
		h := &tar.Header{Name: name, Mode: mode, ModTime: t, Typeflag: tar.TypeReg, Size: int64(len(data)), Format: tar.FormatUSTAR}
		if dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	err = add("oci-layout", 0o644, []byte(`{"imageLayoutVersion":"1.0.0"}`), false)
	if err == nil {
		err = add("blobs/", 0o755, nil, true)
	}
	if err == nil {
		err = add("blobs/sha256/", 0o755, nil, true)
	}
	for _, d := range digests {
		if err == nil {
			err = add("blobs/sha256/"+d.Hex, 0o644, blobs[d], false)
		}
	}
	if err == nil {
		err = add("index.json", 0o644, indexJSON, false)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return result{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return result{}, err
	}
	return result{Tag: ref, ManifestDigest: mDigest, ConfigDigest: cDigest, LayerDigest: lDigest, Size: st.Size()}, nil
}
