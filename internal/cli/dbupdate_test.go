package cli

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// goArchive is osv.dev's Go all.zip holding GO-2021-0113 alone.
func goArchive(t *testing.T) *bytes.Buffer {
	t.Helper()
	record, err := os.ReadFile(filepath.Join("testdata", "dbupdate", "GO-2021-0113.json"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("GO-2021-0113.json")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(record)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// osvMirror serves an osv.dev bulk export with a Go archive and a KEV feed,
// with the ETags and conditional GETs of Google Cloud Storage.
func osvMirror(t *testing.T) *httptest.Server {
	t.Helper()
	buf := goArchive(t)
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write([]byte("#model_version:v2025.03.14,score_date:2026-11-30T12:55:00Z\ncve,epss,percentile\nCVE-2021-38561,0.00393,0.59876\n"))
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	epss := gz.Bytes()
	files := map[string][]byte{
		"/osv/ecosystems.txt": []byte("Go\nPyPI\n"),
		"/osv/Go/all.zip":     buf.Bytes(),
		"/kev.json":           []byte(`{"catalogVersion":"2024.12.10","count":1,"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"}]}`),
		"/epss.csv.gz":        epss,
	}
	modified := time.Date(2026, 8, 21, 20, 38, 0, 0, time.UTC)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, filepath.Base(r.URL.Path), modified, bytes.NewReader(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestDBUpdate runs `evident db update` as a user would, twice, and
// compares the plain progress output with testdata/dbupdate.golden.
func TestDBUpdate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := osvMirror(t)
	data := t.TempDir()
	common := []string{"--data", data, "db", "update", "--base-url", s.URL + "/osv"}
	kev := s.URL + "/kev.json"
	epss := s.URL + "/epss.csv.gz"
	runs := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{name: "first update", args: []string{"--ecosystem", "Go", "--ecosystem", "Nope", "--kev-url", kev, "--epss-url", epss}, wantCode: ExitSkipped},
		{name: "nothing changed", args: []string{"--ecosystem", "Go", "--kev-url", kev, "--epss-url", epss}, wantCode: ExitOK},
		{name: "quiet", args: []string{"--ecosystem", "Go", "--quiet", "--no-kev", "--no-epss"}, wantCode: ExitOK},
		{name: "quiet failure", args: []string{"--ecosystem", "Nope", "--quiet", "--no-kev", "--no-epss"}, wantCode: ExitUsage},
		{name: "EPSS URL and no EPSS", args: []string{"--epss-url", epss, "--no-epss"}, wantCode: ExitUsage},
		{name: "all and a list", args: []string{"--all", "--ecosystem", "Go"}, wantCode: ExitUsage},
		{name: "KEV URL and no KEV", args: []string{"--kev-url", kev, "--no-kev"}, wantCode: ExitUsage},
		{name: "bad ecosystem", args: []string{"--ecosystem", "../Go"}, wantCode: ExitUsage},
		{name: "ecosystem misnamed", args: []string{"--ecosystem", "golang", "--ecosystem", "pip"}, wantCode: ExitUsage},
	}
	// Files update concurrently, so lines are sorted; durations vary.
	dur := regexp.MustCompile(` in [0-9.]+[µnm]?s\b`)
	var transcript strings.Builder
	for _, r := range runs {
		code, stdout, stderr := run(t, append(common, r.args...)...)
		if code != r.wantCode {
			t.Errorf("%s: exit code %d, want %d (stderr %q)", r.name, code, r.wantCode, stderr)
		}
		if stdout != "" {
			t.Errorf("%s: stdout %q, want nothing", r.name, stdout)
		}
		args := strings.Join(r.args, " ")
		args = strings.ReplaceAll(args, s.URL, "$SERVER")
		out := strings.ReplaceAll(stderr, s.URL, "$SERVER")
		out = strings.ReplaceAll(out, data, "$DATA")
		out = dur.ReplaceAllString(out, " in $$DURATION")
		transcript.WriteString("$ evident db update " + args + "\n")
		if out == "" {
			transcript.WriteString("(no output)\n")
			continue
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		slices.Sort(lines)
		transcript.WriteString(strings.Join(lines, "\n") + "\n")
	}
	golden(t, filepath.Join("testdata", "dbupdate.golden"), []byte(transcript.String()))
	if _, err := os.Stat(filepath.Join(data, "vulndb", "Go", "all.zip")); err != nil {
		t.Errorf("Go archive: %v", err)
	}
	s.Close()
}

// TestDBUpdateOffline checks what a user without network, or with a
// server that does not answer, sees: one clear line per file, exit 2, and
// no retries for what a retry cannot cure.
func TestDBUpdateOffline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// A listener that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	silent := "http://" + ln.Addr().String()

	tests := []struct {
		name string
		args []string
		// want are lines of stderr; notWant must not appear.
		want, notWant []string
	}{
		{
			name:    "unresolvable host",
			args:    []string{"--base-url", "http://nonexistent.invalid/osv", "--kev-url", "http://nonexistent.invalid/kev.json", "--epss-url", "http://nonexistent.invalid/epss.csv.gz"},
			want:    []string{"Go: failed: get http://nonexistent.invalid/osv/Go/all.zip: dial tcp: lookup nonexistent.invalid", "KEV: failed: get http://nonexistent.invalid/kev.json: dial tcp: lookup nonexistent.invalid", "EPSS: failed: get http://nonexistent.invalid/epss.csv.gz: dial tcp: lookup nonexistent.invalid", "0 downloaded, 0 up to date, 3 failed"},
			notWant: []string{"retrying"},
		},
		{
			name: "server never answers",
			args: []string{"--base-url", silent, "--no-kev", "--no-epss", "--timeout", "100ms"},
			want: []string{"Go: failed: get " + silent + "/Go/all.zip: gave up after 100ms: timed out", "0 downloaded, 0 up to date, 1 failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "unresolvable") {
				var de *net.DNSError
				if _, err := net.DefaultResolver.LookupHost(context.Background(), "nonexistent.invalid"); !errors.As(err, &de) || !de.IsNotFound {
					t.Skipf("this machine's resolver does not answer NXDOMAIN for nonexistent.invalid: %v", err)
				}
			}
			args := append([]string{"--data", t.TempDir(), "db", "update", "--ecosystem", "Go"}, tt.args...)
			code, _, stderr := run(t, args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d", code, ExitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr:\n%s\nwant %q", stderr, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr:\n%s\nwant no %q", stderr, w)
				}
			}
		})
	}
}

// TestDBUpdateFileMirror checks an update from a copy of the export on a
// mounted share (file:// URLs): a missing file is named as a missing
// file, not as an HTTP status, and an update that failed for some files
// only exits 3 (the run completed, the others were updated), one that
// failed for all of them 2.
func TestDBUpdateFileMirror(t *testing.T) {
	mirror := t.TempDir()
	if err := os.MkdirAll(filepath.Join(mirror, "Go"), 0o755); err != nil {
		t.Fatal(err)
	}
	buf := goArchive(t)
	if err := os.WriteFile(filepath.Join(mirror, "Go", "all.zip"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	base := "file://" + filepath.ToSlash(mirror)
	npm := filepath.Join(mirror, "npm", "all.zip")
	kev := filepath.Join(mirror, "kev.json")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// wantErr is the last line of stderr.
		wantErr string
	}{
		{
			name: "an ecosystem missing", args: []string{"--ecosystem", "Go", "--ecosystem", "npm", "--no-kev", "--no-epss"}, wantCode: ExitSkipped,
			wantErr: "evident: update vulnerability database: npm: not found: file " + npm + " does not exist (the other files were updated)",
		},
		{
			name: "the KEV catalog missing", args: []string{"--ecosystem", "Go", "--kev-url", "file://" + filepath.ToSlash(kev), "--no-epss"}, wantCode: ExitSkipped,
			wantErr: "evident: update vulnerability database: KEV: not found: file " + kev + " does not exist (the other files were updated)",
		},
		{
			name: "every file missing", args: []string{"--ecosystem", "npm", "--no-kev", "--no-epss"}, wantCode: ExitUsage,
			wantErr: "evident: update vulnerability database: npm: not found: file " + npm + " does not exist",
		},
		{
			name: "every file there", args: []string{"--ecosystem", "Go", "--no-kev", "--no-epss"}, wantCode: ExitOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"--data", t.TempDir(), "db", "update", "--base-url", base}, tt.args...)...)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; code != tt.wantCode || (tt.wantErr != "" && last != tt.wantErr) {
				t.Errorf("exit %d, stderr:\n%s\nwant %d and last:\n%s", code, stderr, tt.wantCode, tt.wantErr)
			}
			if strings.Contains(stderr, "HTTP") {
				t.Errorf("stderr names HTTP for a file:\n%s", stderr)
			}
		})
	}
}
