package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var dummyBinary = []byte("#!/bin/false\n# stands in for the nri-memqos binary\n")

// buildDummy builds an image from a dummy binary and the real default
// configuration into a temporary directory.
func buildDummy(t *testing.T, tag string) (options, result) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "nri-memqos")
	if err := os.WriteFile(bin, dummyBinary, 0o755); err != nil {
		t.Fatal(err)
	}
	o := options{
		Binary:  bin,
		Config:  filepath.Join("..", "nri-memqos.yaml"),
		Tag:     tag,
		Output:  filepath.Join(dir, "out", "image.tar"),
		Arch:    "amd64",
		Source:  "https://example.com/nri-memqos",
		Created: time.Unix(0, 0).UTC(),
	}
	r, err := build(o)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return o, r
}

// readTar returns the regular files and all headers of a tar stream.
func readTar(t *testing.T, r io.Reader) (map[string][]byte, map[string]*tar.Header, []string) {
	t.Helper()
	files := map[string][]byte{}
	headers := map[string]*tar.Header{}
	var order []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := headers[h.Name]; dup {
			t.Errorf("tar entry %s twice", h.Name)
		}
		headers[h.Name] = h
		order = append(order, h.Name)
		if h.Typeflag == tar.TypeReg {
			files[h.Name] = b
		}
	}
	return files, headers, order
}

// extract unpacks the OCI layout tarball into a directory.
func extract(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files, headers, _ := readTar(t, f)
	dir := t.TempDir()
	for name, h := range headers {
		if strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
			t.Fatalf("unsafe entry %q", name)
		}
		p := filepath.Join(dir, name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImageLayout(t *testing.T) {
	o, r := buildDummy(t, "localhost/nri-memqos:dev")
	wantConfig, err := os.ReadFile(o.Config)
	if err != nil {
		t.Fatal(err)
	}

	// The tarball: oci-layout first, index.json last, blobs named by digest.
	f, err := os.Open(o.Output)
	if err != nil {
		t.Fatal(err)
	}
	files, headers, order := readTar(t, f)
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if order[0] != "oci-layout" || order[len(order)-1] != "index.json" {
		t.Errorf("entries %v: want oci-layout first and index.json last", order)
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	for name, h := range headers {
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(o.Created) {
			t.Errorf("%s: uid %d gid %d mtime %v; want 0, 0, %v", name, h.Uid, h.Gid, h.ModTime, o.Created)
		}
	}
	st, err := os.Stat(o.Output)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size != st.Size() {
		t.Errorf("reported size %d, file has %d", r.Size, st.Size())
	}

	// index.json: one manifest, named for containerd's importer.
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if index.SchemaVersion != 2 || index.MediaType != types.OCIImageIndex || len(index.Manifests) != 1 {
		t.Fatalf("index.json = %s", files["index.json"])
	}
	desc := index.Manifests[0]
	if got := desc.Annotations["io.containerd.image.name"]; got != "localhost/nri-memqos:dev" {
		t.Errorf("io.containerd.image.name = %q", got)
	}
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != "dev" {
		t.Errorf("org.opencontainers.image.ref.name = %q", got)
	}
	if desc.MediaType != types.OCIManifestSchema1 || desc.Digest != r.ManifestDigest {
		t.Errorf("manifest descriptor %+v, built %s", desc, r.ManifestDigest)
	}
	if desc.Platform == nil || desc.Platform.Architecture != "amd64" || desc.Platform.OS != "linux" {
		t.Errorf("platform %+v, want linux/amd64", desc.Platform)
	}
	for _, d := range []v1.Hash{r.ManifestDigest, r.ConfigDigest, r.LayerDigest} {
		if _, ok := files["blobs/sha256/"+d.Hex]; !ok {
			t.Errorf("blob %s missing", d)
		}
	}
	if len(files) != 5 {
		t.Errorf("%d files in the tarball, want oci-layout, index.json and 3 blobs", len(files))
	}

	// Read it back as an OCI layout and check every digest and diff ID.
	p, err := layout.FromPath(extract(t, o.Output))
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	img, err := ii.Image(r.ManifestDigest)
	if err != nil {
		t.Fatal(err)
	}
	// Every blob is named by its digest; the manifest's descriptors and the
	// config's diff ID match what they point to.
	for name, b := range files {
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			if d, _, _ := v1.SHA256(bytes.NewReader(b)); d.Hex != hex {
				t.Errorf("blob %s has digest %s", name, d)
			}
		}
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("manifest media types: %+v", m)
	}
	if m.Config.Digest != r.ConfigDigest || m.Config.Size != int64(len(files["blobs/sha256/"+r.ConfigDigest.Hex])) ||
		m.Layers[0].Digest != r.LayerDigest || m.Layers[0].Size != int64(len(files["blobs/sha256/"+r.LayerDigest.Hex])) {
		t.Errorf("manifest descriptors %+v, %+v do not match the blobs", m.Config, m.Layers)
	}

	// The config.
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "amd64" || cf.OS != "linux" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !cf.Created.Equal(o.Created) {
		t.Errorf("created %v", cf.Created)
	}
	if want := []string{"/usr/bin/nri-memqos"}; !reflect.DeepEqual(cf.Config.Entrypoint, want) {
		t.Errorf("entrypoint %q, want %q", cf.Config.Entrypoint, want)
	}
	wantCmd := []string{"-socket", "/var/run/nri/nri.sock", "-config", "/etc/nri-memqos/nri-memqos.yaml", "-state-dir", "/run/nri-memqos"}
	if !reflect.DeepEqual(cf.Config.Cmd, wantCmd) {
		t.Errorf("cmd %q, want %q", cf.Config.Cmd, wantCmd)
	}
	if cf.Config.User != "0" {
		t.Errorf("user %q, want 0", cf.Config.User)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":   "nri-memqos",
		"org.opencontainers.image.source":  "https://example.com/nri-memqos",
		"org.opencontainers.image.version": "dev",
	} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if len(cf.History) != 1 || !cf.History[0].Created.Equal(o.Created) {
		t.Errorf("history %+v", cf.History)
	}

	// The layer: both files with their modes, owned by root, and the
	// directories above them.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	uncompressed, err := io.ReadAll(rc)
	if cerr := rc.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := v1.SHA256(bytes.NewReader(uncompressed)); len(cf.RootFS.DiffIDs) != 1 || cf.RootFS.DiffIDs[0] != d {
		t.Errorf("diff IDs %v, the layer's is %s", cf.RootFS.DiffIDs, d)
	}
	lfiles, lheaders, _ := readTar(t, bytes.NewReader(uncompressed))
	for name, want := range map[string]struct {
		mode int64
		data []byte
	}{
		"usr/bin/nri-memqos":             {0o755, dummyBinary},
		"etc/nri-memqos/nri-memqos.yaml": {0o644, wantConfig},
	} {
		h, ok := lheaders[name]
		if !ok {
			t.Errorf("layer has no %s", name)
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode != want.mode || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: type %c mode %o uid %d gid %d; want a regular file, mode %o, 0:0", name, h.Typeflag, h.Mode, h.Uid, h.Gid, want.mode)
		}
		if !bytes.Equal(lfiles[name], want.data) {
			t.Errorf("%s: content differs", name)
		}
	}
	for _, d := range []string{"usr/", "usr/bin/", "etc/", "etc/nri-memqos/"} {
		if h, ok := lheaders[d]; !ok || h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
			t.Errorf("layer directory %s: %+v", d, h)
		}
	}
	if len(lheaders) != 6 {
		t.Errorf("layer has %d entries, want 6", len(lheaders))
	}
}

func TestImageReproducible(t *testing.T) {
	o1, r1 := buildDummy(t, "localhost/nri-memqos:dev")
	o2, r2 := buildDummy(t, "localhost/nri-memqos:dev")
	b1, err := os.ReadFile(o1.Output)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(o2.Output)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) || r1.ManifestDigest != r2.ManifestDigest {
		t.Errorf("two builds of the same inputs differ: %s, %s", r1.ManifestDigest, r2.ManifestDigest)
	}
}

func TestImageTag(t *testing.T) {
	o, r := buildDummy(t, "registry.example.com:5000/team/nri-memqos:v1.2.3")
	if r.Tag != "registry.example.com:5000/team/nri-memqos:v1.2.3" {
		t.Errorf("tag %q", r.Tag)
	}
	f, err := os.Open(o.Output)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files, _, _ := readTar(t, f)
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	a := index.Manifests[0].Annotations
	if a["io.containerd.image.name"] != "registry.example.com:5000/team/nri-memqos:v1.2.3" || a["org.opencontainers.image.ref.name"] != "v1.2.3" {
		t.Errorf("annotations %v", a)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(files["blobs/sha256/"+r.ConfigDigest.Hex], &cf); err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" {
		t.Errorf("version label %q", cf.Config.Labels["org.opencontainers.image.version"])
	}
}

// elfFile is a minimal ELF64 executable header for machine m, with a
// PT_INTERP program header when dynamic.
func elfFile(t *testing.T, m elf.Machine, dynamic bool) []byte {
	t.Helper()
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	h := elf.Header64{
		Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: uint32(elf.EV_CURRENT),
		Ehsize: 64, Phentsize: 56, Shentsize: 64,
	}
	var progs []elf.Prog64
	if dynamic {
		h.Phoff, h.Phnum = 64, 1
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Align: 1})
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	for _, p := range progs {
		if err := binary.Write(&buf, binary.LittleEndian, p); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestCheckBinary(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		arch string
		err  string
	}{
		{"static amd64", elfFile(t, elf.EM_X86_64, false), "amd64", ""},
		{"static arm64", elfFile(t, elf.EM_AARCH64, false), "arm64", ""},
		{"wrong arch", elfFile(t, elf.EM_AARCH64, false), "amd64", "built for EM_AARCH64"},
		{"dynamic", elfFile(t, elf.EM_X86_64, true), "amd64", "dynamically linked"},
		{"truncated ELF", []byte(elf.ELFMAG + "\x02"), "amd64", "malformed ELF"},
		{"not ELF", dummyBinary, "amd64", ""},
	} {
		err := checkBinary(c.b, c.arch)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, elfFile(t, elf.EM_X86_64, true), 0o755); err != nil {
		t.Fatal(err)
	}
	good := options{Binary: bin, Config: filepath.Join("..", "nri-memqos.yaml"), Tag: "localhost/nri-memqos:dev",
		Output: filepath.Join(dir, "image.tar"), Arch: "amd64"}
	for _, c := range []struct {
		name string
		edit func(*options)
		err  string
	}{
		{"dynamic binary", func(*options) {}, "dynamically linked"},
		{"no registry", func(o *options) { o.Tag = "nri-memqos:dev" }, "-tag"},
		{"no tag", func(o *options) { o.Tag = "localhost/nri-memqos" }, "-tag"},
		{"arch", func(o *options) { o.Arch = "riscv64" }, "-arch"},
		{"missing binary", func(o *options) { o.Binary = filepath.Join(dir, "none") }, "-binary"},
		{"missing config", func(o *options) {
			o.Binary = filepath.Join("..", "nri-memqos.yaml")
			o.Config = filepath.Join(dir, "none")
		}, "-config"},
	} {
		o := good
		c.edit(&o)
		if _, err := build(o); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
	if _, err := os.Stat(good.Output); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused build left %s behind", good.Output)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if got, err := sourceDateEpoch(); err != nil || !got.Equal(time.Unix(0, 0)) {
		t.Errorf("unset: %v, %v", got, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if got, err := sourceDateEpoch(); err != nil || !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("1700000000: %v, %v", got, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := sourceDateEpoch(); err == nil {
		t.Error("yesterday: no error")
	}
}
