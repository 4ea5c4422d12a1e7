package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"testing"
	"time"
)

// OCI media types and annotations used by buildBusyboxImage.
const (
	ociIndexMediaType    = "application/vnd.oci.image.index.v1+json"
	ociManifestMediaType = "application/vnd.oci.image.manifest.v1+json"
	ociConfigMediaType   = "application/vnd.oci.image.config.v1+json"
	ociLayerMediaType    = "application/vnd.oci.image.layer.v1.tar"

	// annotationImageName is the full image name containerd's importer
	// registers (ctr images import).
	annotationImageName = "io.containerd.image.name"
	// annotationRefName is the OCI reference name; containerd's exporter
	// puts the tag there, and so do we.
	annotationRefName = "org.opencontainers.image.ref.name"
)

// busyboxApplets are the /bin/<applet> -> busybox symlinks in the image.
var busyboxApplets = []string{
	"sh", "sleep", "cat", "echo", "dd", "head", "ls", "mkdir", "rm",
	"true", "false", "grep", "awk", "sync", "mount",
}

// busyboxImageCmd is the image's default command. It is a sleep rather than
// /bin/sh because the same image serves as the pod sandbox ("pause") image,
// and the sandbox runs the default command: /bin/sh exits at once (stdin is
// /dev/null), containerd then reaps the sandbox's shim, and every
// StartContainer in the pod fails with "failed to load sandbox task ...
// failed to create TTRPC connection" (seen in the VM with containerd 2.4.2).
// Containers that give a command (crictl "command") do not use it.
var busyboxImageCmd = []string{"/bin/sleep", "infinity"}

// imageMTime is the fixed modification time of every layer entry, so that
// the same busybox gives the same digests.
var imageMTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *ociPlatform      `json:"platform,omitempty"`
}

type ociPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type ociIndex struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Manifests     []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        ociDescriptor   `json:"config"`
	Layers        []ociDescriptor `json:"layers"`
}

type ociImageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Env []string `json:"Env"`
		Cmd []string `json:"Cmd"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func ociDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// refTag returns the tag of an image reference ("e2e" for
// "docker.io/library/busybox:e2e"), or "latest" when it has none.
func refTag(ref string) string {
	name := ref
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	return "latest"
}

// busyboxLayer returns an uncompressed tar layer holding /bin/busybox, its
// applet symlinks, /tmp and /etc.
func busyboxLayer(busybox []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) error {
		h.ModTime = imageMTime
		h.Format = tar.FormatUSTAR
		return tw.WriteHeader(h)
	}
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"etc/", 0o755}, {"tmp/", 0o1777}} {
		if err := hdr(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}); err != nil {
			return nil, err
		}
	}
	if err := hdr(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(busybox))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(busybox); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildBusyboxImage writes to dst an OCI image layout tarball (oci-layout,
// index.json, blobs/sha256/...) holding one image: one uncompressed tar
// layer with /bin/busybox (copied from busybox, mode 0755), symlinks
// /bin/<applet> -> busybox for the applets in busyboxApplets, and /tmp and
// /etc; a config (amd64, linux, Env PATH=/bin, Cmd busyboxImageCmd: a sleep,
// so that the image also works as the pause image); a manifest;
// and an index.json with one manifest entry per refName carrying the
// annotations "io.containerd.image.name": refName and
// "org.opencontainers.image.ref.name": its tag, so that
// `ctr -n k8s.io images import dst` registers the image under every name.
// The output is deterministic: the same busybox gives the same bytes.
func buildBusyboxImage(busybox, dst string, refNames ...string) error {
	if len(refNames) == 0 {
		return errors.New("buildBusyboxImage: no image names")
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	layer, err := busyboxLayer(bb)
	if err != nil {
		return err
	}
	layerDigest := ociDigest(layer)

	var cfg ociImageConfig
	cfg.Architecture = "amd64"
	cfg.OS = "linux"
	cfg.Config.Env = []string{"PATH=/bin"}
	cfg.Config.Cmd = busyboxImageCmd
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{layerDigest} // uncompressed: diff_id == digest
	config, err := json.Marshal(cfg)
	if err != nil {
		return err
	}

	manifest, err := json.Marshal(ociManifest{
		SchemaVersion: 2,
		MediaType:     ociManifestMediaType,
		Config:        ociDescriptor{MediaType: ociConfigMediaType, Digest: ociDigest(config), Size: int64(len(config))},
		Layers:        []ociDescriptor{{MediaType: ociLayerMediaType, Digest: layerDigest, Size: int64(len(layer))}},
	})
	if err != nil {
		return err
	}

	idx := ociIndex{SchemaVersion: 2, MediaType: ociIndexMediaType}
	for _, ref := range refNames {
		idx.Manifests = append(idx.Manifests, ociDescriptor{
			MediaType: ociManifestMediaType,
			Digest:    ociDigest(manifest),
			Size:      int64(len(manifest)),
			Platform:  &ociPlatform{Architecture: "amd64", OS: "linux"},
			Annotations: map[string]string{
				annotationImageName: ref,
				annotationRefName:   refTag(ref),
			},
		})
	}
	index, err := json.Marshal(idx)
	if err != nil {
		return err
	}

	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime = imageMTime
		h.Format = tar.FormatUSTAR
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
	}
	dirs := []string{"blobs/", "blobs/sha256/"}
	blobs := [][]byte{layer, config, manifest}
	for _, d := range dirs {
		if err == nil {
			err = add(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}, nil)
		}
	}
	for _, b := range blobs {
		if err == nil {
			name := "blobs/sha256/" + strings.TrimPrefix(ociDigest(b), "sha256:")
			err = add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, b)
		}
	}
	for _, fl := range files {
		if err == nil {
			err = add(&tar.Header{Typeflag: tar.TypeReg, Name: fl.name, Mode: 0o644}, fl.data)
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = errors.Join(err, os.Remove(dst))
		return fmt.Errorf("buildBusyboxImage: %w", err)
	}
	return nil
}

// readImageTar returns the regular files of a tarball (name -> content) and all
// headers by name.
func readImageTar(t *testing.T, r io.Reader) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		if _, dup := hdrs[h.Name]; dup {
			t.Errorf("duplicate tar entry %q", h.Name)
		}
		hdrs[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("reading %s: %v", h.Name, err)
			}
			files[h.Name] = b
		}
	}
	return files, hdrs
}

func TestBuildBusyboxImage(t *testing.T) {
	dir := t.TempDir()
	// A fake busybox keeps the test independent of the host.
	bbPath := path.Join(dir, "busybox")
	bbContent := []byte("\x7fELF not really busybox")
	if err := os.WriteFile(bbPath, bbContent, 0o600); err != nil {
		t.Fatal(err)
	}
	refs := []string{"docker.io/library/busybox:e2e", "registry.k8s.io/pause:3.10.2"}
	dst := path.Join(dir, "busybox.tar")
	if err := buildBusyboxImage(bbPath, dst, refs...); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readImageTar(t, bytes.NewReader(raw))

	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", got)
	}
	// Every blob's name is the digest of its content.
	for name, b := range files {
		if !strings.HasPrefix(name, "blobs/") {
			continue
		}
		want := strings.TrimPrefix(name, "blobs/sha256/")
		if got := strings.TrimPrefix(ociDigest(b), "sha256:"); got != want {
			t.Errorf("blob %s has digest %s", name, got)
		}
	}
	blob := func(d ociDescriptor, mediaType string) []byte {
		t.Helper()
		if d.MediaType != mediaType {
			t.Errorf("descriptor %s: media type %q, want %q", d.Digest, d.MediaType, mediaType)
		}
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok {
			t.Fatalf("blob %s missing", d.Digest)
		}
		if int64(len(b)) != d.Size || ociDigest(b) != d.Digest {
			t.Fatalf("descriptor %s size %d does not match its blob (size %d, digest %s)", d.Digest, d.Size, len(b), ociDigest(b))
		}
		return b
	}

	var idx ociIndex
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != ociIndexMediaType {
		t.Errorf("index schemaVersion %d mediaType %q", idx.SchemaVersion, idx.MediaType)
	}
	if len(idx.Manifests) != len(refs) {
		t.Fatalf("index has %d manifests, want %d", len(idx.Manifests), len(refs))
	}
	for i, ref := range refs {
		d := idx.Manifests[i]
		if got := d.Annotations[annotationImageName]; got != ref {
			t.Errorf("manifest %d: %s = %q, want %q", i, annotationImageName, got, ref)
		}
		if got, want := d.Annotations[annotationRefName], refTag(ref); got != want {
			t.Errorf("manifest %d: %s = %q, want %q", i, annotationRefName, got, want)
		}
		if d.Platform == nil || d.Platform.Architecture != "amd64" || d.Platform.OS != "linux" {
			t.Errorf("manifest %d: platform %+v", i, d.Platform)
		}
		var m ociManifest
		if err := json.Unmarshal(blob(d, ociManifestMediaType), &m); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		var cfg ociImageConfig
		if err := json.Unmarshal(blob(m.Config, ociConfigMediaType), &cfg); err != nil {
			t.Fatalf("config: %v", err)
		}
		if cfg.Architecture != "amd64" || cfg.OS != "linux" ||
			strings.Join(cfg.Config.Env, ",") != "PATH=/bin" || strings.Join(cfg.Config.Cmd, " ") != "/bin/sleep infinity" {
			t.Errorf("config = %+v", cfg)
		}
		if len(m.Layers) != 1 || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != m.Layers[0].Digest {
			t.Fatalf("layers %+v, diff_ids %v", m.Layers, cfg.RootFS.DiffIDs)
		}
		layerFiles, layerHdrs := readImageTar(t, bytes.NewReader(blob(m.Layers[0], ociLayerMediaType)))
		if h := layerHdrs["bin/busybox"]; h == nil || h.Mode != 0o755 || !bytes.Equal(layerFiles["bin/busybox"], bbContent) {
			t.Errorf("bin/busybox: header %+v", h)
		}
		for _, a := range busyboxApplets {
			if h := layerHdrs["bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
				t.Errorf("bin/%s: header %+v", a, h)
			}
		}
		for _, d := range []string{"tmp/", "etc/", "bin/"} {
			if h := layerHdrs[d]; h == nil || h.Typeflag != tar.TypeDir {
				t.Errorf("%s: header %+v", d, h)
			}
		}
	}

	// Deterministic: a second build gives the same bytes.
	dst2 := path.Join(dir, "again.tar")
	if err := buildBusyboxImage(bbPath, dst2, refs...); err != nil {
		t.Fatal(err)
	}
	raw2, err := os.ReadFile(dst2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, raw2) {
		t.Error("two builds differ")
	}

	if err := buildBusyboxImage(bbPath, path.Join(dir, "none.tar")); err == nil {
		t.Error("no names: want an error")
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("image files: %v", names)
}

func TestRefTag(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/library/busybox:e2e":  "e2e",
		"registry.k8s.io/pause:3.10.2":   "3.10.2",
		"localhost:5000/foo":             "latest",
		"localhost:5000/foo:bar":         "bar",
		"busybox@sha256:0123456789abcde": "latest",
	} {
		if got := refTag(ref); got != want {
			t.Errorf("refTag(%q) = %q, want %q", ref, got, want)
		}
	}
}
