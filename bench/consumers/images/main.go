// Command images deploys each service of the example as a container image:
// it builds an OCI image per service binary (one layer holding the binary at
// /usr/local/bin/<service>), serves an OCI distribution registry on
// 127.0.0.1 (go-containerregistry's, in memory), pushes the images to it and
// writes what a scanner needs to pull each one, then serves until it is
// interrupted. No container runtime is needed.
//
//	go run . -bin DIR -refs FILE [-addr 127.0.0.1:0] SERVICE...
//
// FILE gets one line per service, "SERVICE NAME DIGEST", where NAME is the
// image's repository (127.0.0.1:PORT/shop/SERVICE) and DIGEST its manifest
// digest: scanners pull NAME@DIGEST, and a deployment of the image reports
// them as container.image.name and oci.manifest.digest. FILE is written
// once every image is pushed.
//
// The images are built reproducibly (fixed timestamps, no build host
// details), so the same binaries give the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// built is the time the images say they were built: the date of the
// vulnerability snapshot the benchmark uses.
var built = time.Date(2026, 8, 21, 0, 0, 0, 0, time.UTC)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	bin := fs.String("bin", "", "directory of the service binaries, one per service, named as the service")
	refs := fs.String("refs", "", "file to write the pushed images to, one \"SERVICE NAME DIGEST\" line each")
	addr := fs.String("addr", "127.0.0.1:0", "address the registry listens on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *refs == "" || fs.NArg() == 0 {
		return errors.New("usage: images -bin DIR -refs FILE SERVICE [SERVICE]")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer srv.Close()

	var lines strings.Builder
	for _, service := range fs.Args() {
		img, err := image(filepath.Join(*bin, service), service)
		if err != nil {
			return err
		}
		repo := ln.Addr().String() + "/shop/" + service
		ref, err := name.ParseReference(repo + ":1.0.0")
		if err != nil {
			return fmt.Errorf("image reference %s: %w", repo, err)
		}
		if err := remote.Write(ref, img); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return fmt.Errorf("digest of %s: %w", ref, err)
		}
		fmt.Fprintf(&lines, "%s %s %s\n", service, repo, digest)
	}
	tmp := *refs + ".tmp"
	if err := os.WriteFile(tmp, []byte(lines.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, *refs); err != nil {
		return fmt.Errorf("write %s: %w", *refs, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		return fmt.Errorf("serve the registry: %w", err)
	}
}

// image is an OCI image of one service: its binary, executable, at
// /usr/local/bin/<service>, and the binary as entrypoint.
func image(binary, service string) (v1.Image, error) {
	exe, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read the binary of %s: %w", service, err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o755, ModTime: built},
		{Typeflag: tar.TypeDir, Name: "usr/local/", Mode: 0o755, ModTime: built},
		{Typeflag: tar.TypeDir, Name: "usr/local/bin/", Mode: 0o755, ModTime: built},
		{Typeflag: tar.TypeReg, Name: "usr/local/bin/" + service, Mode: 0o755, ModTime: built, Size: int64(len(exe))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer of %s: %w", service, err)
		}
	}
	if _, err := tw.Write(exe); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", service, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", service, err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", service, err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: built},
		Config: v1.Config{
			Entrypoint: []string{"/usr/local/bin/" + service},
			Labels:     map[string]string{"org.opencontainers.image.title": service},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", service, err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   l,
		History: v1.History{Created: v1.Time{Time: built}, CreatedBy: "COPY " + service + " /usr/local/bin/"},
	})
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", service, err)
	}
	return img, nil
}
