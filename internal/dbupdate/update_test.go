package dbupdate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
	"github.com/evidentsec/evident/internal/vulndb/vulndbtest"
)

// readFile returns the content of path, or nil when it does not exist.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// assertNoTempFiles fails if a temporary file was left under dir.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(d.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// summary is the comparable part of a FileResult.
type summary struct {
	Name    string
	Status  Status
	Bytes   int64
	Records int
}

func summarize(r Result) []summary {
	var s []summary
	for _, f := range r.Files {
		s = append(s, summary{Name: f.Name, Status: f.Status, Bytes: f.Bytes, Records: f.Records})
	}
	return s
}

func TestUpdateDownloadsThenUpToDate(t *testing.T) {
	s := newGCSServer(t)
	goZip := osvArchive(t)
	pypiZip := osvArchive(t, "PYSEC-2024-1")
	kev := kevFeed(t)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: goZip})
	s.put("/osv-vulnerabilities/PyPI/all.zip", &object{body: pypiZip})
	s.put("/kev.json", &object{body: kev})
	cfg := testConfig(t, s, true, "Go", "PyPI")

	res, err := Update(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := []summary{
		{Name: "Go", Status: StatusDownloaded, Bytes: int64(len(goZip)), Records: 2},
		{Name: "PyPI", Status: StatusDownloaded, Bytes: int64(len(pypiZip)), Records: 3},
		{Name: KEVName, Status: StatusDownloaded, Bytes: int64(len(kev)), Records: 2},
	}
	if diff := cmp.Diff(summarize(res), want); diff != "" {
		t.Errorf("first update (-got +want):\n%s", diff)
	}
	db := filepath.Join(cfg.Dir, "vulndb")
	for path, want := range map[string][]byte{
		filepath.Join(db, "Go", "all.zip"):   goZip,
		filepath.Join(db, "PyPI", "all.zip"): pypiZip,
		filepath.Join(db, "kev.json"):        kev,
	} {
		if got := readFile(t, path); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, want the %d served", path, len(got), len(want))
		}
	}
	if fi, err := os.Stat(filepath.Join(db, "Go", "all.zip")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("Go/all.zip has mode %v, want 0644", fi.Mode())
	}
	m, ok := readMeta(filepath.Join(db, "Go", "meta.json"))
	if !ok {
		t.Fatal("Go/meta.json missing or unreadable")
	}
	if m.URL != s.URL+"/osv-vulnerabilities/Go/all.zip" || m.ETag == "" || m.LastModified != "Fri, 21 Aug 2026 20:38:00 GMT" ||
		m.Size != int64(len(goZip)) || len(m.MD5) != 32 || m.Records != 2 || m.DownloadedAt.IsZero() {
		t.Errorf("Go/meta.json = %+v", m)
	}
	if _, ok := readMeta(filepath.Join(db, "kev.meta.json")); !ok {
		t.Error("kev.meta.json missing or unreadable")
	}
	if ua := s.requestsFor("/osv-vulnerabilities/Go/all.zip")[0].Header.Get("User-Agent"); ua != "evident/test" {
		t.Errorf("User-Agent = %q, want evident/test", ua)
	}
	assertNoTempFiles(t, cfg.Dir)

	// Nothing changed on the server: every file is confirmed by a 304.
	res, err = Update(context.Background(), cfg)
	if err != nil {
		t.Fatalf("second Update: %v", err)
	}
	want = []summary{
		{Name: "Go", Status: StatusUpToDate, Records: 2},
		{Name: "PyPI", Status: StatusUpToDate, Records: 3},
		{Name: KEVName, Status: StatusUpToDate, Records: 2},
	}
	if diff := cmp.Diff(summarize(res), want); diff != "" {
		t.Errorf("second update (-got +want):\n%s", diff)
	}
	reqs := s.requestsFor("/osv-vulnerabilities/Go/all.zip")
	if got := reqs[len(reqs)-1].Header.Get("If-None-Match"); got != m.ETag {
		t.Errorf("If-None-Match = %q, want %q", got, m.ETag)
	}
	m2, _ := readMeta(filepath.Join(db, "Go", "meta.json"))
	if !m2.DownloadedAt.Equal(m.DownloadedAt) || !m2.CheckedAt.After(m.CheckedAt) {
		t.Errorf("after 304: downloaded_at %v checked_at %v, want %v and later than %v", m2.DownloadedAt, m2.CheckedAt, m.DownloadedAt, m.CheckedAt)
	}

	// A new archive on the server replaces the old one.
	newZip := osvArchive(t, "GO-2026-9999")
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: newZip})
	res, err = Update(context.Background(), cfg)
	if err != nil {
		t.Fatalf("third Update: %v", err)
	}
	if got := res.Files[0]; got.Status != StatusDownloaded || got.Records != 3 {
		t.Errorf("Go after a change: %v, %d records, want downloaded, 3", got.Status, got.Records)
	}
	if got := readFile(t, filepath.Join(db, "Go", "all.zip")); !bytes.Equal(got, newZip) {
		t.Error("Go/all.zip was not replaced by the new archive")
	}
	assertNoTempFiles(t, cfg.Dir)
}

// TestUpdateKeepsOldDatabase checks that every kind of failure leaves the
// previous archive and its metadata as they were, and names the ecosystem
// and the problem.
func TestUpdateKeepsOldDatabase(t *testing.T) {
	good := osvArchive(t, "GO-2026-0001")
	tests := []struct {
		name         string
		obj          *object
		wantIs       error
		wantErr      string
		wantAttempts int
	}{
		{
			name:         "md5 mismatch",
			obj:          &object{body: good, hash: "md5=" + "AAAAAAAAAAAAAAAAAAAAAA=="},
			wantIs:       ErrChecksum,
			wantErr:      "md5 is",
			wantAttempts: 1,
		},
		{
			name:         "crc32c mismatch",
			obj:          &object{body: good, hash: "crc32c=AAAAAA=="},
			wantIs:       ErrChecksum,
			wantErr:      "crc32c is",
			wantAttempts: 1,
		},
		{
			name:         "malformed x-goog-hash",
			obj:          &object{body: good, hash: "md5=not base64!"},
			wantIs:       ErrChecksum,
			wantErr:      "x-goog-hash md5",
			wantAttempts: 1,
		},
		{
			name:         "truncated body",
			obj:          &object{body: good, truncate: true},
			wantIs:       ErrSize,
			wantErr:      "of " + strconv.Itoa(len(good)) + " bytes",
			wantAttempts: 3,
		},
		{
			name:         "stored length mismatch",
			obj:          &object{body: good, storedLength: strconv.Itoa(len(good) + 1)},
			wantIs:       ErrSize,
			wantErr:      "x-goog-stored-content-length",
			wantAttempts: 1,
		},
		{
			name:         "encoded despite identity",
			obj:          &object{body: good, encoding: "gzip"},
			wantErr:      `Content-Encoding "gzip" despite Accept-Encoding: identity`,
			wantAttempts: 1,
		},
		{
			name:         "not a zip",
			obj:          &object{body: []byte("<html><body>Service Unavailable</body></html>")},
			wantIs:       ErrArchive,
			wantErr:      "zip: not a valid zip file",
			wantAttempts: 1,
		},
		{
			name:         "zip of something else",
			obj:          &object{body: makeZip(t, map[string][]byte{"GO-2026-0001.json": []byte("{}"), "README.md": []byte("# hi")})},
			wantIs:       ErrArchive,
			wantErr:      `entry 1 "README.md": name does not end in .json`,
			wantAttempts: 1,
		},
		{
			name:         "zip of non-JSON records",
			obj:          &object{body: makeZip(t, map[string][]byte{"GO-2026-0001.json": []byte("<html>")})},
			wantIs:       ErrArchive,
			wantErr:      `entry 0 "GO-2026-0001.json": starts with '<'`,
			wantAttempts: 1,
		},
		{
			name:         "server errors beyond the retries",
			obj:          &object{body: good, failures: []int{500, 502, 503}},
			wantIs:       ErrStatus,
			wantErr:      "503 Service Unavailable",
			wantAttempts: 3,
		},
		{
			name:         "forbidden is not retried",
			obj:          &object{body: good, failures: []int{403}},
			wantIs:       ErrStatus,
			wantErr:      "403 Forbidden",
			wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newGCSServer(t)
			const path = "/osv-vulnerabilities/Go/all.zip"
			old := osvArchive(t)
			s.put(path, &object{body: old})
			cfg := testConfig(t, s, false, "Go")
			cfg.Retries = 2
			if _, err := Update(context.Background(), cfg); err != nil {
				t.Fatalf("first Update: %v", err)
			}
			archive := filepath.Join(cfg.Dir, "vulndb", "Go", "all.zip")
			metaPath := filepath.Join(cfg.Dir, "vulndb", "Go", "meta.json")
			oldMeta := readFile(t, metaPath)
			before := len(s.requestsFor(path))

			s.put(path, tt.obj)
			res, err := Update(context.Background(), cfg)
			if err == nil {
				t.Fatal("Update succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			if !strings.HasPrefix(err.Error(), "Go: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to start with %q and contain %q", err, "Go: ", tt.wantErr)
			}
			if got := res.Failed(); len(got) != 1 || got[0].Name != "Go" || got[0].Attempts != tt.wantAttempts {
				t.Errorf("failed = %+v, want Go after %d attempts", got, tt.wantAttempts)
			}
			if got := len(s.requestsFor(path)) - before; got != tt.wantAttempts {
				t.Errorf("%d requests, want %d", got, tt.wantAttempts)
			}
			if got := readFile(t, archive); !bytes.Equal(got, old) {
				t.Error("the old archive was changed")
			}
			if got := readFile(t, metaPath); !bytes.Equal(got, oldMeta) {
				t.Errorf("meta.json changed:\n%s", got)
			}
			assertNoTempFiles(t, cfg.Dir)
		})
	}
}

func TestUpdateRetriesServerErrors(t *testing.T) {
	s := newGCSServer(t)
	body := osvArchive(t)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: body, failures: []int{500, 503}})
	cfg := testConfig(t, s, false, "Go")
	var progress bytes.Buffer
	cfg.Progress = &progress

	res, err := Update(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := res.Files[0]; got.Status != StatusDownloaded || got.Attempts != 3 {
		t.Errorf("Go: %v after %d attempts, want downloaded after 3", got.Status, got.Attempts)
	}
	for _, want := range []string{
		"Go: attempt 1/4 failed, retrying in 1ms: get " + s.URL + "/osv-vulnerabilities/Go/all.zip: unexpected HTTP status 500 Internal Server Error\n",
		"Go: attempt 2/4 failed, retrying in 2ms: ",
		"Go: downloaded ",
	} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress = %q, want it to contain %q", progress.String(), want)
		}
	}
}

func TestUpdateOneFailureDoesNotStopTheOthers(t *testing.T) {
	s := newGCSServer(t)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})
	s.put("/kev.json", &object{body: kevFeed(t)})
	cfg := testConfig(t, s, true, "Go", "Nope", "npm")
	s.put("/osv-vulnerabilities/npm/all.zip", &object{body: osvArchive(t, "GHSA-xxxx-xxxx-xxxx")})

	res, err := Update(context.Background(), cfg)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update error = %v, want ErrNotFound", err)
	}
	// The server has no ecosystems.txt to check the name against before.
	want := "Nope: get " + s.URL + "/osv-vulnerabilities/Nope/all.zip: not found (HTTP 404): the OSV schema has no ecosystem \"Nope\"; osv.dev lists its own in " + DefaultBaseURL + "/ecosystems.txt"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	wantFiles := []summary{
		{Name: "Go", Status: StatusDownloaded, Bytes: res.Files[0].Bytes, Records: 2},
		{Name: "Nope", Status: StatusFailed},
		{Name: "npm", Status: StatusDownloaded, Bytes: res.Files[2].Bytes, Records: 3},
		{Name: KEVName, Status: StatusDownloaded, Bytes: res.Files[3].Bytes, Records: 2},
	}
	if diff := cmp.Diff(summarize(res), wantFiles); diff != "" {
		t.Errorf("results (-got +want):\n%s", diff)
	}
	if got := len(s.requestsFor("/osv-vulnerabilities/Nope/all.zip")); got != 1 {
		t.Errorf("404 requested %d times, want once (no retry)", got)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "vulndb", "Nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Nope: %v, want no directory left behind", err)
	}
}

func TestUpdateCancelledMidDownload(t *testing.T) {
	s := newGCSServer(t)
	const path = "/osv-vulnerabilities/Go/all.zip"
	old := osvArchive(t)
	s.put(path, &object{body: old})
	cfg := testConfig(t, s, false, "Go")
	if _, err := Update(context.Background(), cfg); err != nil {
		t.Fatalf("first Update: %v", err)
	}

	hang := &object{body: osvArchive(t, "GO-2026-0001"), hang: true, started: make(chan struct{})}
	s.put(path, hang)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-hang.started
		cancel()
	}()
	res, err := Update(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update error = %v, want context.Canceled", err)
	}
	if got := res.Files[0].Attempts; got != 1 {
		t.Errorf("%d attempts, want 1: a cancellation is not retried", got)
	}
	if got := readFile(t, filepath.Join(cfg.Dir, "vulndb", "Go", "all.zip")); !bytes.Equal(got, old) {
		t.Error("the old archive was changed")
	}
	assertNoTempFiles(t, cfg.Dir)
}

func TestUpdateStalledTransferIsRetried(t *testing.T) {
	s := newGCSServer(t)
	const path = "/osv-vulnerabilities/Go/all.zip"
	hang := &object{body: osvArchive(t), hang: true, started: make(chan struct{})}
	s.put(path, hang)
	cfg := testConfig(t, s, false, "Go")
	// Short enough to keep the test quick, long enough that a loaded
	// machine does not take the healthy retry for a stall too; spare
	// retries for the same reason.
	cfg.StallTimeout = 250 * time.Millisecond
	cfg.Retries = 3
	// The retry finds the server well again.
	fixed := &object{body: osvArchive(t)}
	go func() {
		<-hang.started
		s.put(path, fixed)
	}()

	res, err := Update(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := res.Files[0]; got.Status != StatusDownloaded || got.Attempts < 2 {
		t.Errorf("Go: %v after %d attempts, want downloaded after a retry", got.Status, got.Attempts)
	}
	assertNoTempFiles(t, cfg.Dir)
}

// TestUpdateUnlistedEcosystem: a name the OSV schema does not know is
// looked up in ecosystems.txt first, and one the list lacks is not
// downloaded. Names the schema knows are not looked up.
func TestUpdateUnlistedEcosystem(t *testing.T) {
	s := newGCSServer(t)
	s.put("/osv-vulnerabilities/ecosystems.txt", &object{body: []byte("Go\nNewEco\n")})
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})
	s.put("/osv-vulnerabilities/NewEco/all.zip", &object{body: osvArchive(t, "NEW-2026-0001")})
	tests := []struct {
		name       string
		ecosystems []string
		wantErr    string
		wantLists  int
	}{
		{name: "known to the schema", ecosystems: []string{"Go"}},
		{name: "listed", ecosystems: []string{"Go", "NewEco"}, wantLists: 1},
		{name: "not listed", ecosystems: []string{"Go", "Nope"}, wantLists: 1,
			wantErr: "Nope: not found: " + s.URL + "/osv-vulnerabilities/ecosystems.txt does not list \"Nope\""},
		{name: "listed in another case", ecosystems: []string{"neweco"}, wantLists: 1,
			wantErr: "neweco: not found: " + s.URL + "/osv-vulnerabilities/ecosystems.txt does not list \"neweco\": did you mean \"NewEco\"?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.requestsFor("/osv-vulnerabilities/ecosystems.txt"))
			cfg := testConfig(t, s, false, tt.ecosystems...)
			res, err := Update(context.Background(), cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Update error = %v, want none", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrNotFound)):
				t.Errorf("Update error = %v, want ErrNotFound: %s", err, tt.wantErr)
			}
			if got := len(s.requestsFor("/osv-vulnerabilities/ecosystems.txt")) - before; got != tt.wantLists {
				t.Errorf("ecosystems.txt read %d times, want %d", got, tt.wantLists)
			}
			for _, f := range res.Failed() {
				if f.Attempts != 0 || len(s.requestsFor("/osv-vulnerabilities/"+f.Name+"/all.zip")) != 0 {
					t.Errorf("%s: downloaded (%d attempts), want no request", f.Name, f.Attempts)
				}
				if _, err := os.Stat(filepath.Join(cfg.Dir, "vulndb", f.Name)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: %v, want no directory", f.Name, err)
				}
			}
		})
	}
}

func TestUpdateAllEcosystems(t *testing.T) {
	s := newGCSServer(t)
	s.put("/osv-vulnerabilities/ecosystems.txt", &object{body: []byte("Go\ncrates.io\nBad:Name\n\n")})
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})
	s.put("/osv-vulnerabilities/crates.io/all.zip", &object{body: osvArchive(t, "RUSTSEC-2024-0001")})
	cfg := testConfig(t, s, false)
	cfg.AllEcosystems = true

	res, err := Update(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), `ecosystems.txt: ecosystems.txt line 3 "Bad:Name": contains one of`) {
		t.Errorf("Update error = %v, want one naming line 3 of ecosystems.txt", err)
	}
	want := []summary{
		{Name: "ecosystems.txt", Status: StatusFailed},
		{Name: "Go", Status: StatusDownloaded, Bytes: res.Files[1].Bytes, Records: 2},
		{Name: "crates.io", Status: StatusDownloaded, Bytes: res.Files[2].Bytes, Records: 3},
	}
	if diff := cmp.Diff(summarize(res), want); diff != "" {
		t.Errorf("results (-got +want):\n%s", diff)
	}
}

func TestUpdateAllEcosystemsListMissing(t *testing.T) {
	s := newGCSServer(t)
	cfg := testConfig(t, s, false)
	cfg.AllEcosystems = true
	_, err := Update(context.Background(), cfg)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "list ecosystems from "+s.URL+"/osv-vulnerabilities/ecosystems.txt") {
		t.Errorf("Update error = %v, want ErrNotFound naming ecosystems.txt", err)
	}
}

func TestUpdateInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	_, err := Update(context.Background(), cfg)
	if !errors.Is(err, ErrConfig) {
		t.Errorf("Update without a directory: %v, want ErrConfig", err)
	}
}

// TestUpdateRealSnapshot serves the real Go vulnerability database and
// checks that it passes every check.
func TestUpdateRealSnapshot(t *testing.T) {
	body := realSnapshot(t)
	s := newGCSServer(t)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: body})
	cfg := testConfig(t, s, false, "Go")
	res, err := Update(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := res.Files[0]; got.Records != 4291 || got.Bytes != int64(len(body)) {
		t.Errorf("Go: %d records, %d bytes, want 4291 and %d", got.Records, got.Bytes, len(body))
	}
}

// realSnapshot returns the bytes of the Go snapshot in ../shared, or skips.
func realSnapshot(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(vulndbtest.GoSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBarProgress(t *testing.T) {
	s := newGCSServer(t)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})
	s.put("/osv-vulnerabilities/npm/all.zip", &object{body: osvArchive(t, "GHSA-xxxx-xxxx-xxxx")})
	cfg := testConfig(t, s, false, "Go", "npm")
	var out bytes.Buffer
	cfg.Progress = &out
	cfg.ProgressBar = true
	if _, err := Update(context.Background(), cfg); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := out.String()
	for _, want := range []string{"Go: downloaded ", "npm: downloaded ", "\033[J", "100%"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress output %q lacks %q", got, want)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	body := realSnapshot(b)
	s := newGCSServer(b)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: body})
	cfg := testConfig(b, s, false, "Go")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		// No database each time: a full download, not a 304.
		if err := os.RemoveAll(filepath.Join(cfg.Dir, "vulndb")); err != nil {
			b.Fatal(err)
		}
		if _, err := Update(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(4291*b.N)/b.Elapsed().Seconds(), "records/s")
}

func TestUpdateCancelledWhileWaitingToRetry(t *testing.T) {
	s := newGCSServer(t)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t), failures: []int{503}})
	cfg := testConfig(t, s, false, "Go")
	cfg.RetryWait = time.Hour
	cfg.MaxRetryWait = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The progress line of the retry comes just before the wait.
	cfg.Progress = writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("retrying in 1h0m0s")) {
			cancel()
		}
		return len(p), nil
	})
	_, err := Update(ctx, cfg)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrStatus) {
		t.Errorf("Update error = %v, want context.Canceled and the last attempt's ErrStatus", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestUpdateFromDirectory checks a mirror on a mounted share (file://),
// for a machine without access to the internet: downloaded, then up to
// date, then replaced when the mirror's copy is newer; a missing
// ecosystem fails at once, naming the file.
func TestUpdateFromDirectory(t *testing.T) {
	mirror := t.TempDir()
	write := func(name string, data []byte, at time.Time) {
		t.Helper()
		path := filepath.Join(mirror, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 8, 21, 20, 38, 0, 0, time.UTC)
	goZip, kev := osvArchive(t), kevFeed(t)
	write("Go/all.zip", goZip, t0)
	write("kev.json", kev, t0)
	cfg := DefaultConfig()
	cfg.BaseURL, cfg.KEVURL, cfg.EPSSURL = "file://"+filepath.ToSlash(mirror), "file://"+filepath.ToSlash(mirror)+"/kev.json", ""
	cfg.Ecosystems, cfg.Dir, cfg.RetryWait = []string{"Go"}, t.TempDir(), time.Millisecond
	downloaded := func(records int) summary {
		return summary{Name: "Go", Status: StatusDownloaded, Bytes: int64(len(goZip)), Records: records}
	}
	kevDownloaded := summary{Name: KEVName, Status: StatusDownloaded, Bytes: int64(len(kev)), Records: 2}
	kevUpToDate := summary{Name: KEVName, Status: StatusUpToDate, Records: 2}
	for _, st := range []struct {
		name string
		edit func()
		want func() []summary
	}{
		{"first", func() {}, func() []summary { return []summary{downloaded(2), kevDownloaded} }},
		{"unchanged", func() {}, func() []summary { return []summary{{Name: "Go", Status: StatusUpToDate, Records: 2}, kevUpToDate} }},
		{"newer", func() { goZip = osvArchive(t, "GO-2026-9999"); write("Go/all.zip", goZip, t0.Add(time.Hour)) },
			func() []summary { return []summary{downloaded(3), kevUpToDate} }},
	} {
		st.edit()
		res, err := Update(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s update: %v", st.name, err)
		}
		if diff := cmp.Diff(summarize(res), st.want()); diff != "" {
			t.Errorf("%s update (-got +want):\n%s", st.name, diff)
		}
	}
	if got := readFile(t, filepath.Join(cfg.Dir, "vulndb", "Go", "all.zip")); !bytes.Equal(got, goZip) {
		t.Error("Go/all.zip is not the mirror's newer copy")
	}

	cfg.Ecosystems, cfg.KEVURL = []string{"PyPI"}, ""
	res, err := Update(context.Background(), cfg)
	if err == nil || len(res.Files) != 1 || res.Files[0].Status != StatusFailed || !strings.Contains(fmt.Sprint(res.Files[0].Err), "PyPI/all.zip") {
		t.Errorf("missing ecosystem: %+v, %v: want PyPI failed, naming its file", res.Files, err)
	}

	// A server's redirect to the same file is refused: only the user
	// names local files.
	local := cfg.BaseURL
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, local+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	cfg.Ecosystems, cfg.BaseURL = []string{"Go"}, srv.URL
	res, err = Update(context.Background(), cfg)
	if err == nil || len(res.Files) != 1 || res.Files[0].Status != StatusFailed || res.Files[0].Attempts != 1 ||
		!errors.Is(res.Files[0].Err, ErrRedirect) || !strings.Contains(fmt.Sprint(res.Files[0].Err), "a server may not name a local file") {
		t.Errorf("redirect to a file: %+v, %v: want Go failed at once, saying a server may not name a local file", res.Files, err)
	}
}

// TestUpdateKeepsNewerFile: an archive older (Last-Modified) than the one
// held, as a stale mirror or CDN node serves it, does not replace it: the
// advisories published since would vanish. The update fails, saying so,
// and the file and its metadata stay as they were.
func TestUpdateKeepsNewerFile(t *testing.T) {
	s := newGCSServer(t)
	const path = "/osv-vulnerabilities/Go/all.zip"
	s.put(path, &object{body: osvArchive(t, "GO-2026-0001")})
	cfg := testConfig(t, s, false, "Go")
	if _, err := Update(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfg.Dir, "vulndb", "Go", "all.zip")
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s.put(path, &object{body: osvArchive(t), modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
	_, err = Update(context.Background(), cfg)
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "Last-Modified 2024-01-01T00:00:00Z, older than the 2026-08-21T20:38:00Z of the file held, which is kept") {
		t.Errorf("Update = %v, want ErrStale naming both dates", err)
	}
	if after, err := os.ReadFile(file); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the archive held was replaced (%v)", err)
	}
}

// TestUpdateSizeCap: a download larger than such a file takes (a server
// gone wrong, a redirect somewhere else) is cut off at the bound rather
// than filling the data directory before the checks, and leaves nothing.
func TestUpdateSizeCap(t *testing.T) {
	s := newGCSServer(t)
	s.put("/kev.json", &object{body: bytes.Repeat([]byte(" "), vulndb.MaxKEVSize+1)})
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})
	cfg := testConfig(t, s, true, "Go")
	_, err := Update(context.Background(), cfg)
	if !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d bytes, more than such a file takes", vulndb.MaxKEVSize)) {
		t.Errorf("Update = %v, want ErrSize naming the bound", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cfg.Dir, "vulndb", ".*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestSweepTemps: the temporary files of updates that were killed (their
// clean-up never ran) are removed by the next one, with an ecosystem
// directory they leave empty, which the loader read as a source without
// records at every start; those of an update that may still run are not.
func TestSweepTemps(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	write := func(path string, age time.Duration) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "Go", "all.zip"), 48*time.Hour)
	write(filepath.Join(root, "Go", ".all.zip.123.tmp"), 48*time.Hour)
	write(filepath.Join(root, "Go", ".all.zip.456.tmp"), time.Hour)
	write(filepath.Join(root, "PyPI", ".all.zip.789.tmp"), 48*time.Hour)
	write(filepath.Join(root, ".kev.json.1.tmp"), 48*time.Hour)
	sweepTemps(root, now)
	var left []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p != root {
			rel, _ := filepath.Rel(root, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return nil
	})
	if want := []string{"Go", "Go/.all.zip.456.tmp", "Go/all.zip"}; !slices.Equal(left, want) {
		t.Errorf("after the sweep: %v, want %v", left, want)
	}
}
