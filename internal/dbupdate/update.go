package dbupdate

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/evidentsec/evident/internal/vulndb"
)

// Status is the outcome of one file's update.
type Status int

// Outcomes of a file's update.
const (
	StatusFailed     Status = iota // the old file, if any, is kept
	StatusDownloaded               // a new file replaced the old one
	StatusUpToDate                 // the server said the file has not changed
)

func (s Status) String() string {
	switch s {
	case StatusDownloaded:
		return "downloaded"
	case StatusUpToDate:
		return "up to date"
	default:
		return "failed"
	}
}

// Names of the FileResults of the KEV feed and the EPSS file.
const (
	KEVName  = "KEV"
	EPSSName = "EPSS"
)

// FileResult is the outcome of updating one ecosystem archive, the KEV
// feed or the EPSS file.
type FileResult struct {
	// Name is the ecosystem, KEVName or EPSSName.
	Name string
	// URL is where the file is downloaded from, Path where it is stored.
	URL, Path string
	Status    Status
	// Bytes is the size of the new file; zero unless downloaded.
	Bytes int64
	// Records counts the OSV records (KEV vulnerabilities, EPSS scores) in
	// the new file.
	Records int
	// Attempts is the number of requests made, retries included.
	Attempts int
	// Duration is the time from the first request to the end.
	Duration time.Duration
	// Err says why the update failed; nil unless Status is StatusFailed.
	Err error
}

// Result is the outcome of Update: one FileResult per ecosystem, in the
// order asked for (ecosystems.txt order with AllEcosystems), then the KEV
// feed and the EPSS file if they were asked for.
type Result struct {
	Files []FileResult
}

// Failed returns the files whose update failed.
func (r Result) Failed() []FileResult {
	var failed []FileResult
	for _, f := range r.Files {
		if f.Status == StatusFailed {
			failed = append(failed, f)
		}
	}
	return failed
}

// errStalled is the cause of a transfer aborted for silence.
var errStalled = errors.New("transfer stalled")

// transientError marks an error that a retry may cure.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err: err} }

// maxArchiveBytes bounds an ecosystem's all.zip: osv.dev's largest are a
// few hundred MB.
const maxArchiveBytes = 8 << 30

// job is one file to update.
type job struct {
	name     string
	url      string
	path     string // the file to replace
	metaPath string
	// ownDir is set when the file's directory holds nothing else, and so
	// is removed when left empty by a failed first download: vulndb would
	// read an empty ecosystem directory as a source without records.
	ownDir bool
	// verify checks the downloaded file (open, synced, n bytes long) and
	// returns its record count. prev is the record count of the file it
	// replaces, 0 when there is none.
	verify func(f *os.File, n int64, prev int) (int, error)
	// max is the most bytes the download may take: more is a server gone
	// wrong, which would fill the data directory before the checks.
	max int64
	// err, when set, fails the job without a request: an ecosystem that
	// ecosystems.txt does not list.
	err error
	// notFound is appended to the download's ErrNotFound: a hint that the
	// ecosystem's name may be wrong.
	notFound string
}

type updater struct {
	cfg Config
	rep reporter
}

// Update downloads the configured ecosystems' archives, the KEV feed and
// the EPSS scores into cfg.Dir/vulndb. Files are updated independently,
// cfg.Concurrency at a time: a failure is recorded in its FileResult and
// does not stop the others. The error is nil when every file is downloaded or up to date;
// otherwise it joins one error per failed file, naming it, and wraps the
// sentinels of this package (ErrChecksum, ErrNotFound, ...) or the
// context's error. Files that failed keep their previous version.
func Update(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	root := filepath.Join(cfg.Dir, "vulndb")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Result{}, fmt.Errorf("create database directory: %w", err)
	}
	sweepTemps(root, time.Now())
	u := &updater{cfg: cfg, rep: newReporter(cfg.Progress, cfg.ProgressBar)}
	defer u.rep.close()

	var res Result
	ecosystems := cfg.Ecosystems
	if cfg.AllEcosystems {
		list, bad, err := u.listEcosystems(ctx)
		if err != nil {
			return Result{}, err
		}
		ecosystems = list
		for _, err := range bad {
			fr := FileResult{Name: "ecosystems.txt", URL: u.ecosystemsURL(), Err: err}
			u.rep.done(fr)
			res.Files = append(res.Files, fr)
		}
	}

	// A name the OSV schema does not know (Validate refused other
	// spellings of those it does) is checked against ecosystems.txt before
	// it is downloaded; a mirror without that file leaves it to the
	// download.
	var listed []string
	if !cfg.AllEcosystems && slices.ContainsFunc(ecosystems, func(eco string) bool { return !slices.Contains(schemaEcosystems, eco) }) {
		listed = u.listedEcosystems(ctx)
	}
	var jobs []job
	for _, eco := range ecosystems {
		dir := filepath.Join(root, eco)
		j := job{
			name:     eco,
			url:      strings.TrimSuffix(cfg.BaseURL, "/") + "/" + url.PathEscape(eco) + "/all.zip",
			path:     filepath.Join(dir, "all.zip"),
			metaPath: filepath.Join(dir, "meta.json"),
			ownDir:   true,
			verify:   verifyArchiveFile,
			max:      maxArchiveBytes,
		}
		switch {
		case listed != nil && !slices.Contains(listed, eco):
			j.err = fmt.Errorf("%w: %s does not list %q", ErrNotFound, u.ecosystemsURL(), eco)
			if s := suggestEcosystem(eco, listed); s != "" {
				j.err = fmt.Errorf("%w: did you mean %q?", j.err, s)
			}
		case !slices.Contains(schemaEcosystems, eco):
			j.notFound = fmt.Sprintf(": the OSV schema has no ecosystem %q; osv.dev lists its own in %s/ecosystems.txt", eco, DefaultBaseURL)
		}
		jobs = append(jobs, j)
	}
	if cfg.KEVURL != "" {
		jobs = append(jobs, job{
			name:     KEVName,
			url:      cfg.KEVURL,
			path:     filepath.Join(root, "kev.json"),
			metaPath: filepath.Join(root, "kev.meta.json"),
			verify:   verifyKEVFile,
			max:      vulndb.MaxKEVSize,
		})
	}
	if cfg.EPSSURL != "" {
		jobs = append(jobs, job{
			name:     EPSSName,
			url:      cfg.EPSSURL,
			path:     filepath.Join(root, "epss.csv.gz"),
			metaPath: filepath.Join(root, "epss.meta.json"),
			verify:   verifyEPSSFile,
			max:      vulndb.MaxEPSSSize,
		})
	}

	files := make([]FileResult, len(jobs))
	var g errgroup.Group
	g.SetLimit(cfg.Concurrency)
	for i, j := range jobs {
		g.Go(func() error {
			files[i] = u.run(ctx, j)
			u.rep.done(files[i])
			return nil
		})
	}
	// The goroutines report failures in files, never through g.
	_ = g.Wait()
	res.Files = append(res.Files, files...)

	var errs []error
	for _, f := range res.Failed() {
		errs = append(errs, fmt.Errorf("%s: %w", f.Name, f.Err))
	}
	return res, errors.Join(errs...)
}

func (u *updater) ecosystemsURL() string {
	return strings.TrimSuffix(u.cfg.BaseURL, "/") + "/ecosystems.txt"
}

// listEcosystems reads ecosystems.txt, retrying like a download.
func (u *updater) listEcosystems(ctx context.Context) (list []string, bad []error, err error) {
	ctx, cancel := u.withTimeout(ctx)
	defer cancel()
	src := u.ecosystemsURL()
	var data []byte
	for attempt := 1; ; attempt++ {
		data, err = u.get(ctx, src)
		if err == nil {
			break
		}
		if !u.retry(ctx, "ecosystems.txt", attempt, err) {
			return nil, nil, fmt.Errorf("list ecosystems from %s: %w", src, err)
		}
	}
	list, bad = parseEcosystems(data)
	if len(list) == 0 {
		return nil, nil, fmt.Errorf("list ecosystems from %s: %w: no ecosystems listed", src, ErrStatus)
	}
	return list, bad, nil
}

// listedEcosystems reads ecosystems.txt once, without retrying, to check
// names before they are downloaded. It returns nil when the list cannot be
// read, as from a mirror that does not copy it.
func (u *updater) listedEcosystems(ctx context.Context) []string {
	data, err := u.get(ctx, u.ecosystemsURL())
	if err != nil {
		return nil
	}
	list, _ := parseEcosystems(data)
	return list
}

// get reads a small file whole. The whole request gets HeaderTimeout:
// the file is a few kilobytes.
func (u *updater) get(ctx context.Context, src string) ([]byte, error) {
	actx, cancel := context.WithTimeoutCause(ctx, u.cfg.HeaderTimeout, errStalled)
	defer cancel()
	req, err := u.newRequest(actx, src)
	if err != nil {
		return nil, err
	}
	resp, err := u.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
			return nil, transient(fmt.Errorf("get %s: no response in %v: %w", src, u.cfg.HeaderTimeout, ErrTimeout))
		}
		return nil, requestError(ctx, src, err)
	}
	defer resp.Body.Close()
	if err := statusError(src, resp.StatusCode); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %w %d", src, ErrStatus, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
			return nil, transient(fmt.Errorf("read %s: not read in %v: %w", src, u.cfg.HeaderTimeout, ErrTimeout))
		}
		return nil, transient(fmt.Errorf("read %s: %w", src, err))
	}
	return data, nil
}

// retry reports a failed attempt and waits before the next one. It
// returns false when there is to be no next one: the error is permanent,
// the retries are spent, or ctx is done.
func (u *updater) retry(ctx context.Context, name string, attempt int, err error) bool {
	var te *transientError
	if !errors.As(err, &te) || attempt > u.cfg.Retries || ctx.Err() != nil {
		return false
	}
	wait := u.cfg.RetryWait << (attempt - 1)
	if wait > u.cfg.MaxRetryWait || wait <= 0 {
		wait = u.cfg.MaxRetryWait
	}
	u.rep.retry(name, attempt, u.cfg.Retries+1, wait, err)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// withTimeout bounds ctx by cfg.Timeout, when one is set.
func (u *updater) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if u.cfg.Timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, u.cfg.Timeout, fmt.Errorf("gave up after %v: %w", u.cfg.Timeout, ErrTimeout))
}

// run updates one file, retrying transient failures.
func (u *updater) run(ctx context.Context, j job) FileResult {
	start := time.Now()
	ctx, cancel := u.withTimeout(ctx)
	defer cancel()
	res := FileResult{Name: j.name, URL: j.url, Path: j.path}
	if j.err != nil {
		res.Err = j.err
		return res
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		res.Err = fmt.Errorf("create directory for %s: %w", j.path, err)
		return res
	}
	old, haveOld := readMeta(j.metaPath)
	// A conditional request is only safe when the file the validators
	// describe is still the one on disk.
	if haveOld {
		fi, err := os.Stat(j.path)
		haveOld = err == nil && old.URL == j.url && fi.Size() == old.Size
	}
	for {
		res.Attempts++
		m, status, err := u.try(ctx, j, old, haveOld)
		if err == nil {
			res.Duration = time.Since(start)
			res.Status = status
			if status == StatusDownloaded {
				res.Bytes = m.Size
			}
			res.Records = m.Records
			return res
		}
		if !u.retry(ctx, j.name, res.Attempts, err) {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
				// Cancelled while waiting to retry: say so first.
				err = fmt.Errorf("%w; last attempt: %w", cause, err)
			}
			if j.notFound != "" && errors.Is(err, ErrNotFound) {
				err = fmt.Errorf("%w%s", err, j.notFound)
			}
			res.Duration = time.Since(start)
			res.Err = err
			if j.ownDir {
				// Fails, as it should, unless the directory is empty.
				_ = os.Remove(filepath.Dir(j.path))
			}
			return res
		}
	}
}

func (u *updater) newRequest(ctx context.Context, src string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", src, err)
	}
	req.Header.Set("User-Agent", u.cfg.UserAgent)
	// Ask for the stored bytes: x-goog-hash and Content-Length describe
	// them, not a transcoded stream.
	req.Header.Set("Accept-Encoding", "identity")
	return req, nil
}

// requestError classifies an error of http.Client.Do. Failures that a
// retry seconds later cannot cure are permanent, so that an offline
// machine or a wrong URL fails at once: a name that does not resolve, a
// refused connection (nothing listens there; a proxy that is down), and
// TLS errors. Timeouts, resets and other network errors are transient.
func requestError(ctx context.Context, src string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("get %s: %w", src, context.Cause(ctx))
	}
	// *url.Error repeats the method and URL that the message already has.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		dnsErr    *net.DNSError
		certErr   *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
	)
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("get %s: %w", src, &kindError{ErrHostNotFound, err})
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("get %s: %w", src, &kindError{ErrRefused, err})
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &alertErr), errors.Is(err, http.ErrSchemeMismatch):
		return fmt.Errorf("get %s: %w", src, &kindError{ErrTLS, err})
	case errors.Is(err, ErrRedirect):
		return fmt.Errorf("get %s: %w", src, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return transient(fmt.Errorf("get %s: %w", src, &kindError{ErrTimeout, err}))
	}
	return transient(fmt.Errorf("get %s: %w", src, err))
}

// kindError files an error of the network stack under one of this
// package's sentinels without repeating what its message already says
// ("no such host", "connection refused").
type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// statusError classifies the HTTP statuses that are errors. Google Cloud
// Storage's retry guidance names 408, 429 and 5xx as transient; other 4xx
// are not worth repeating.
//
// A file:// URL is answered by http.NewFileTransport, which turns the
// file's error into a status; the error says what happened to the file
// instead, and is never retried.
func statusError(src string, code int) error {
	if u, err := url.Parse(src); err == nil && u.Scheme == "file" && code >= 400 {
		return fileError(filepath.FromSlash(u.Path), code)
	}
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		return fmt.Errorf("get %s: %w (HTTP %d)", src, ErrNotFound, code)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return transient(fmt.Errorf("get %s: %w %d %s", src, ErrStatus, code, http.StatusText(code)))
	case code >= 400:
		return fmt.Errorf("get %s: %w %d %s", src, ErrStatus, code, http.StatusText(code))
	}
	return nil
}

// fileError is why the file at path could not be read, asked again of
// the file system: its status code (a 404 for a missing file, 403 for a
// permission, 500 for anything else) says only part of it.
func fileError(path string, code int) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: file %s does not exist", ErrNotFound, path)
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("read %s: is a directory", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	f.Close()
	return fmt.Errorf("read %s: %s", path, strings.ToLower(http.StatusText(code)))
}

// try makes one request for j and, on success, returns the file's new
// metadata and whether it was downloaded or is up to date.
func (u *updater) try(ctx context.Context, j job, old Meta, conditional bool) (Meta, Status, error) {
	// The attempt's context is cancelled when the transfer stalls; each
	// byte received pushes that deadline back.
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Until the response headers arrive the deadline is HeaderTimeout:
	// a server that accepts the connection and never answers.
	stall := time.AfterFunc(u.cfg.HeaderTimeout, func() { cancel(errStalled) })
	defer stall.Stop()

	req, err := u.newRequest(actx, j.url)
	if err != nil {
		return Meta{}, StatusFailed, err
	}
	if conditional {
		if old.ETag != "" {
			req.Header.Set("If-None-Match", old.ETag)
		}
		if old.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.LastModified)
		}
	}
	resp, err := u.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
			return Meta{}, StatusFailed, transient(fmt.Errorf("get %s: no response in %v: %w", j.url, u.cfg.HeaderTimeout, ErrTimeout))
		}
		return Meta{}, StatusFailed, requestError(ctx, j.url, err)
	}
	defer resp.Body.Close()
	stall.Reset(u.cfg.StallTimeout)
	if err := statusError(j.url, resp.StatusCode); err != nil {
		return Meta{}, StatusFailed, err
	}
	now := time.Now().UTC()
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		m := old
		m.CheckedAt = now
		if err := writeMeta(j.metaPath, m); err != nil {
			return Meta{}, StatusFailed, fmt.Errorf("record check of %s: %w", j.path, err)
		}
		return m, StatusUpToDate, nil
	case resp.StatusCode != http.StatusOK:
		return Meta{}, StatusFailed, fmt.Errorf("get %s: %w %d %s", j.url, ErrStatus, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	// A file older than the one held (a stale mirror or CDN node) does not
	// replace it: the advisories published since would vanish. Another
	// node may serve the current one, so the request is tried again.
	if held, errH := http.ParseTime(old.LastModified); errH == nil {
		if got, errG := http.ParseTime(resp.Header.Get("Last-Modified")); errG == nil && got.Before(held) {
			return Meta{}, StatusFailed, transient(fmt.Errorf("get %s: %w: Last-Modified %s, older than the %s of the file held, which is kept",
				j.url, ErrStale, got.Format(time.RFC3339), held.Format(time.RFC3339)))
		}
	}
	// Only the stored bytes can be checked against x-goog-hash and
	// Content-Length; a server that encodes anyway is not understood.
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		return Meta{}, StatusFailed, fmt.Errorf("get %s: Content-Encoding %q despite Accept-Encoding: identity", j.url, ce)
	}
	hashes, err := parseGoogHash(resp.Header.Values("X-Goog-Hash"))
	if err != nil {
		return Meta{}, StatusFailed, fmt.Errorf("get %s: %w: %w", j.url, ErrChecksum, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(j.path), tempPattern(j.path))
	if err != nil {
		return Meta{}, StatusFailed, fmt.Errorf("create temporary file for %s: %w", j.path, err)
	}
	stored := false
	defer func() {
		if !stored {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	u.rep.begin(j.name, resp.ContentLength)
	md5h := md5.New()
	crch := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	body := &stallReader{r: resp.Body, timer: stall, timeout: u.cfg.StallTimeout, add: func(n int) { u.rep.add(j.name, int64(n)) }}
	dst := &writeTagger{w: io.MultiWriter(tmp, md5h, crch)}
	n, err := io.Copy(dst, io.LimitReader(body, j.max+1))
	switch {
	case err == nil && n > j.max:
		return Meta{}, StatusFailed, fmt.Errorf("read %s: %w: more than %d bytes, more than such a file takes", j.url, ErrSize, j.max)
	case err == nil:
	case dst.err != nil:
		return Meta{}, StatusFailed, fmt.Errorf("write %s: %w", tmp.Name(), err)
	case ctx.Err() != nil:
		return Meta{}, StatusFailed, fmt.Errorf("read %s: %w", j.url, context.Cause(ctx))
	case errors.Is(context.Cause(actx), errStalled):
		return Meta{}, StatusFailed, transient(fmt.Errorf("read %s: no data for %v after %d bytes: %w", j.url, u.cfg.StallTimeout, n, errStalled))
	case resp.ContentLength > n:
		return Meta{}, StatusFailed, transient(fmt.Errorf("read %s: %w: got %d of %d bytes: %w", j.url, ErrSize, n, resp.ContentLength, err))
	default:
		return Meta{}, StatusFailed, transient(fmt.Errorf("read %s after %d bytes: %w", j.url, n, err))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return Meta{}, StatusFailed, fmt.Errorf("read %s: %w: got %d bytes, Content-Length is %d", j.url, ErrSize, n, resp.ContentLength)
	}
	if s := resp.Header.Get("X-Goog-Stored-Content-Length"); s != "" {
		want, err := strconv.ParseInt(s, 10, 64)
		if err != nil || want != n {
			return Meta{}, StatusFailed, fmt.Errorf("read %s: %w: got %d bytes, x-goog-stored-content-length is %q", j.url, ErrSize, n, s)
		}
	}
	sum := md5h.Sum(nil)
	if hashes.md5 != nil && !bytes.Equal(sum, hashes.md5) {
		return Meta{}, StatusFailed, fmt.Errorf("read %s: %w: md5 is %s, x-goog-hash says %s", j.url, ErrChecksum,
			base64.StdEncoding.EncodeToString(sum), base64.StdEncoding.EncodeToString(hashes.md5))
	}
	if crc := crch.Sum(nil); hashes.crc32c != nil && !bytes.Equal(crc, hashes.crc32c) {
		return Meta{}, StatusFailed, fmt.Errorf("read %s: %w: crc32c is %s, x-goog-hash says %s", j.url, ErrChecksum,
			base64.StdEncoding.EncodeToString(crc), base64.StdEncoding.EncodeToString(hashes.crc32c))
	}
	// Readable by all: CreateTemp's files are private, and the database is
	// not secret.
	if err := tmp.Chmod(0o644); err != nil {
		return Meta{}, StatusFailed, err
	}
	if err := tmp.Sync(); err != nil {
		return Meta{}, StatusFailed, fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	// The count of the file it replaces, conditional request or not: a
	// file much smaller than the one it replaces is a broken export or a
	// mirror caught mid-sync, not the database shrinking.
	records, err := j.verify(tmp, n, old.Records)
	if err != nil {
		return Meta{}, StatusFailed, fmt.Errorf("check %s: %w", j.url, err)
	}
	if err := tmp.Close(); err != nil {
		return Meta{}, StatusFailed, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	// A cancellation that arrived during the checks still wins: the user
	// asked for nothing to change.
	if err := ctx.Err(); err != nil {
		return Meta{}, StatusFailed, fmt.Errorf("store %s: %w", j.path, context.Cause(ctx))
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		return Meta{}, StatusFailed, fmt.Errorf("store %s: %w", j.path, err)
	}
	stored = true
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		return Meta{}, StatusFailed, err
	}
	m := Meta{
		URL:          j.url,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		Size:         n,
		MD5:          hex.EncodeToString(sum),
		Records:      records,
		DownloadedAt: now,
		CheckedAt:    now,
	}
	if err := writeMeta(j.metaPath, m); err != nil {
		// The new file is in place; without its metadata the next update
		// is merely unconditional.
		return Meta{}, StatusFailed, fmt.Errorf("record download of %s: %w", j.path, err)
	}
	return m, StatusDownloaded, nil
}

func verifyArchiveFile(f *os.File, n int64, prev int) (int, error) {
	records, err := verifyArchive(f, n)
	if err != nil {
		return records, err
	}
	if err := enough(records, prev, "records", "archive"); err != nil {
		return records, fmt.Errorf("%w: %w", ErrArchive, err)
	}
	return records, nil
}

func verifyEPSSFile(f *os.File, n int64, prev int) (int, error) {
	return verifyEPSS(io.NewSectionReader(f, 0, n), prev)
}

func verifyKEVFile(f *os.File, n int64, prev int) (int, error) {
	return verifyKEV(io.NewSectionReader(f, 0, n), "as downloaded", prev)
}

// stallReader pushes the stall deadline back whenever bytes arrive and
// reports them as progress.
type stallReader struct {
	r       io.Reader
	timer   *time.Timer
	timeout time.Duration
	add     func(int)
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.timeout)
		s.add(n)
	}
	return n, err
}

// writeTagger remembers write errors, which io.Copy does not tell apart
// from read errors: a full disk is not worth a retry.
type writeTagger struct {
	w   io.Writer
	err error
}

func (t *writeTagger) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}
