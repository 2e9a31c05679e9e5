package dbupdate

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// object is a file served by gcsServer, with the ways it can misbehave.
type object struct {
	body []byte
	// failures are statuses answered before the object is served.
	failures []int
	// hash overrides the x-goog-hash header GCS would send.
	hash string
	// storedLength overrides x-goog-stored-content-length.
	storedLength string
	// encoding is sent as Content-Encoding, the body unchanged.
	encoding string
	// truncate sends Content-Length for the whole body, then half of it.
	truncate bool
	// modified is its Last-Modified; zero: 21 August 2026.
	modified time.Time
	// hang sends half the body, closes started, and waits for the client
	// to go away.
	hang    bool
	started chan struct{}
}

// gcsServer serves objects the way storage.googleapis.com does: with
// x-goog-hash (crc32c and md5, base64), x-goog-stored-content-length, an
// ETag and Last-Modified, and conditional GETs answered by
// http.ServeContent.
type gcsServer struct {
	*httptest.Server
	mu       sync.Mutex
	objects  map[string]*object
	requests []*http.Request
}

func newGCSServer(t testing.TB) *gcsServer {
	t.Helper()
	s := &gcsServer{objects: make(map[string]*object)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// put serves body at path, replacing what was there.
func (s *gcsServer) put(path string, o *object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[path] = o
}

// requestsFor returns the requests made for path.
func (s *gcsServer) requestsFor(path string) []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rs []*http.Request
	for _, r := range s.requests {
		if r.URL.Path == path {
			rs = append(rs, r)
		}
	}
	return rs
}

func (s *gcsServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	o, ok := s.objects[r.URL.Path]
	var fail int
	if ok && len(o.failures) > 0 {
		fail, o.failures = o.failures[0], o.failures[1:]
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>", http.StatusNotFound)
		return
	}
	if fail != 0 {
		http.Error(w, "backend error", fail)
		return
	}
	h := w.Header()
	sum := md5.Sum(o.body)
	crc := crc32.Checksum(o.body, crc32.MakeTable(crc32.Castagnoli))
	crcBytes := []byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)}
	hash := "crc32c=" + base64.StdEncoding.EncodeToString(crcBytes) + ",md5=" + base64.StdEncoding.EncodeToString(sum[:])
	if o.hash != "" {
		hash = o.hash
	}
	h.Set("X-Goog-Hash", hash)
	stored := strconv.Itoa(len(o.body))
	if o.storedLength != "" {
		stored = o.storedLength
	}
	h.Set("X-Goog-Stored-Content-Length", stored)
	h.Set("ETag", fmt.Sprintf(`"%x"`, sum))
	h.Set("Content-Type", "application/zip")
	if o.encoding != "" {
		h.Set("Content-Encoding", o.encoding)
	}
	switch {
	case o.truncate:
		h.Set("Content-Length", strconv.Itoa(len(o.body)))
		w.WriteHeader(http.StatusOK)
		w.Write(o.body[:len(o.body)/2])
	case o.hang:
		h.Set("Content-Length", strconv.Itoa(len(o.body)))
		w.WriteHeader(http.StatusOK)
		w.Write(o.body[:len(o.body)/2])
		w.(http.Flusher).Flush()
		close(o.started)
		<-r.Context().Done()
	default:
		modified := o.modified
		if modified.IsZero() {
			modified = time.Date(2026, 8, 21, 20, 38, 0, 0, time.UTC)
		}
		http.ServeContent(w, r, "all.zip", modified, bytes.NewReader(o.body))
	}
}

// makeZip builds an archive of the named files, in name order.
func makeZip(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// osvRecords returns the real OSV records of testdata/osv, by file name.
func osvRecords(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "osv", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("testdata/osv: %v (%d files)", err, len(paths))
	}
	records := make(map[string][]byte)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		records[filepath.Base(p)] = data
	}
	return records
}

// osvArchive returns an all.zip of the testdata records, plus extra ones
// so that archives can differ.
func osvArchive(t testing.TB, extra ...string) []byte {
	t.Helper()
	files := osvRecords(t)
	for _, id := range extra {
		files[id+".json"] = fmt.Appendf(nil, `{"schema_version":"1.3.1","id":%q,"modified":"2026-08-21T00:00:00Z"}`, id)
	}
	return makeZip(t, files)
}

func kevFeed(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "kev.json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// testConfig returns a config that downloads ecosystems (and the KEV feed
// when kev) from s into a new directory, retrying quickly.
func testConfig(t testing.TB, s *gcsServer, kev bool, ecosystems ...string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BaseURL = s.URL + "/osv-vulnerabilities"
	cfg.KEVURL = ""
	cfg.EPSSURL = ""
	if kev {
		cfg.KEVURL = s.URL + "/kev.json"
	}
	cfg.Ecosystems = ecosystems
	cfg.Dir = t.TempDir()
	cfg.HTTPClient = NewHTTPClient(nil)
	t.Cleanup(cfg.HTTPClient.CloseIdleConnections)
	cfg.UserAgent = "evident/test"
	cfg.RetryWait = time.Millisecond
	cfg.MaxRetryWait = 4 * time.Millisecond
	cfg.StallTimeout = 10 * time.Second
	return cfg
}
