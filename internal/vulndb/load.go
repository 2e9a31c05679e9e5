package vulndb

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/osv"
	"golang.org/x/sync/errgroup"
)

// Sentinel errors of Load and OpenDir.
var (
	// ErrNoSource reports that no source was given, or that none of the
	// given sources could be read at all.
	ErrNoSource = errors.New("no vulnerability source could be read")
	// ErrNoDatabase reports a data directory without a vulnerability
	// database (run "evident db update").
	ErrNoDatabase = errors.New("no vulnerability database")
)

// MaxRecordSize bounds one record file, so that a corrupt archive or a
// wrong file cannot fill memory (the largest real records are a few
// hundred kilobytes); db update refuses an archive with a larger one,
// which the loader would skip.
const MaxRecordSize = 32 << 20

// KnowledgeBase supplies affected functions for records that lack them.
// *knowledge.Base implements it; Lookup must be safe for concurrent use and
// return entries the caller may keep.
type KnowledgeBase interface {
	Lookup(ids ...string) []knowledge.Entry
}

// Options say what Load reads.
type Options struct {
	// Sources are paths to OSV sources: directories, zip archives,
	// vuln.go.dev layouts or single record files. Their kind is detected
	// (see Detect).
	Sources []string
	// KEV is the path of a CISA KEV catalog (JSON feed); empty for none.
	KEV string
	// EPSS is the path of FIRST's EPSS score file (CSV, gzipped or not);
	// empty for none.
	EPSS string
	// Knowledge, when set, is merged into every record's Functions, by
	// record id and aliases, for the packages the record affects.
	Knowledge KnowledgeBase
	// Concurrency bounds the records decoded at once; 0 means GOMAXPROCS.
	Concurrency int
}

// LoadError is a problem with one record, file or catalog entry that Load
// skipped. The rest loaded.
type LoadError struct {
	// File names the file, or archive:entry, that holds the record.
	File string
	// ID is the record id when it could be read, or the catalog entry.
	ID string
	// Reason says what is wrong.
	Reason string
	// Err is the sentinel the problem falls under (ErrInvalidRecord,
	// ErrInvalidKEV, ErrInvalidEPSS, or a read error), for errors.Is.
	Err error
}

// Error returns "file: id: reason", or "file: reason" without an id.
func (e LoadError) Error() string {
	if e.ID == "" {
		return e.File + ": " + e.Reason
	}
	return e.File + ": " + e.ID + ": " + e.Reason
}

// Unwrap returns the sentinel the problem falls under.
func (e LoadError) Unwrap() error { return e.Err }

// Kind is the layout of a source path.
type Kind int

// Source kinds that Detect tells apart.
const (
	// KindDir is a directory of OSV JSON files, walked recursively.
	KindDir Kind = iota + 1
	// KindZip is an archive of OSV JSON files (osv.dev all.zip), or of a
	// vuln.go.dev layout (vulndb.zip).
	KindZip
	// KindGoVulnDB is a directory in the vuln.go.dev layout.
	KindGoVulnDB
	// KindFile is a single OSV JSON file (.json or .json.gz).
	KindFile
)

// Detect returns the kind of source at path: a directory with
// index/db.json (or .json.gz) is a vuln.go.dev layout, another directory a
// directory of records; a file that starts like a zip archive (or an empty
// one) is a zip, another file a single record.
func Detect(p string) (Kind, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, fmt.Errorf("detect source %s: %w", p, err)
	}
	if fi.IsDir() {
		if isGoVulnDir(p) {
			return KindGoVulnDB, nil
		}
		return KindDir, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("detect source %s: %w", p, err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err == nil && isZip(magic) {
		return KindZip, nil
	}
	return KindFile, nil
}

// isZip reports whether head starts like a zip archive: a local file
// header, or the end record of an archive without files.
func isZip(head []byte) bool {
	return bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06"))
}

// describe says what a file's first bytes hold, for a message about a file
// of the wrong kind: "it is a zip archive", "it holds HTML or XML", ...
func describe(head []byte) string {
	body := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(head) == 0:
		return "it is empty"
	case isZip(head):
		return "it is a zip archive"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "it is gzip-compressed"
	case len(body) == 0:
		return "it holds only white space"
	case body[0] == '{':
		return "it holds a JSON object"
	case body[0] == '[':
		return "it holds a JSON array"
	case body[0] == '<':
		return "it holds HTML or XML"
	case isText(head):
		return "it holds text"
	}
	return "it holds binary data"
}

// isText reports whether head is UTF-8 without NUL bytes; a rune cut off
// at its end does not count against it.
func isText(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	for cut := 0; cut < utf8.UTFMax && cut < len(head); cut++ {
		if utf8.Valid(head[:len(head)-cut]) {
			return true
		}
	}
	return false
}

// sniffLen is how much of a file describe looks at.
const sniffLen = 512

// checkRecordFile checks that a source given as a single file is what its
// name and the OSV sources make of it, so that a file of the wrong kind is
// named as such rather than failing as malformed JSON: a file named .zip
// that Detect did not find to be a zip archive, a .gz that is not
// gzip-compressed, or another file that does not hold a JSON object.
func checkRecordFile(src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("read source %s: %w", src, err)
	}
	defer f.Close()
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read source %s: %w", src, err)
	}
	head = head[:n]
	lower := strings.ToLower(src)
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return fmt.Errorf("read source %s: not a zip archive: %s", src, describe(head))
	case strings.HasSuffix(lower, ".gz"):
		if !bytes.HasPrefix(head, []byte{0x1f, 0x8b}) {
			return fmt.Errorf("read source %s: not gzip-compressed: %s", src, describe(head))
		}
	case describe(head) != "it holds a JSON object":
		return fmt.Errorf("read source %s: not an OSV record (a JSON object), a zip archive of records or a directory: %s", src, describe(head))
	}
	return nil
}

func isGoVulnDir(dir string) bool {
	for _, n := range []string{"db.json", "db.json.gz"} {
		if fi, err := os.Stat(filepath.Join(dir, "index", n)); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}

// item is one record file to read.
type item struct {
	name string
	// read puts the file's content in buf, gunzipped when it is .json.gz.
	read func(buf *bytes.Buffer) error
	// wantID is the id the file must hold (vuln.go.dev ID/<id>.json).
	wantID string
}

// listing is what a source holds.
type listing struct {
	items    []item
	closer   io.Closer
	problems []LoadError
	// claims are the (module, id) pairs of a vuln.go.dev
	// index/modules.json, checked against the records once they are read.
	claims []moduleClaim
}

// moduleClaim says that index file lists record id under module.
type moduleClaim struct{ file, module, id string }

// result is what reading one item gave: a record, problems, or both (a
// record loaded without its invalid affected entries).
type result struct {
	rec      *record
	problems []LoadError
}

// Load reads the sources and the KEV catalog of opts. It returns the
// database and the problems it skipped (the caller reports them). The
// error is non-nil only when nothing could be read: no source given, none
// readable or no record in any (ErrNoSource), or ctx was cancelled.
func Load(ctx context.Context, opts Options) (*DB, []LoadError, error) {
	if len(opts.Sources) == 0 {
		return nil, nil, fmt.Errorf("load vulnerabilities: %w", ErrNoSource)
	}
	var (
		items     []item
		problems  []LoadError
		failures  []error
		readable  int
		closeZips []io.Closer
	)
	defer func() {
		for _, c := range closeZips {
			c.Close()
		}
	}()
	var claims []moduleClaim
	for _, src := range opts.Sources {
		l, err := listSource(src)
		if err == nil && len(l.items) == 0 && len(l.problems) == 0 {
			// A wrong path (a directory of something else) must not pass
			// for a database in which nothing is vulnerable.
			err = fmt.Errorf("read source %s: no OSV records in it (*.json or *.json.gz files, a zip of them, or a Go vulnerability database)", src)
		}
		if err != nil {
			failures = append(failures, err)
			problems = append(problems, LoadError{File: src, Reason: err.Error(), Err: ErrNoSource})
			continue
		}
		if l.closer != nil {
			closeZips = append(closeZips, l.closer)
		}
		readable++
		items = append(items, l.items...)
		problems = append(problems, l.problems...)
		claims = append(claims, l.claims...)
	}
	if readable == 0 {
		return nil, nil, fmt.Errorf("load vulnerabilities: %w: %w", ErrNoSource, errors.Join(failures...))
	}

	results := make([]result, len(items))
	// Record files are read into pooled buffers: decoding copies what it
	// keeps, and reusing the space saves allocating and clearing ~20 MB
	// per snapshot.
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	g, gctx := errgroup.WithContext(ctx)
	limit := opts.Concurrency
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	g.SetLimit(limit)
	for i := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			buf := bufs.Get().(*bytes.Buffer)
			results[i] = readItem(items[i], buf)
			bufs.Put(buf)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, fmt.Errorf("load vulnerabilities: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("load vulnerabilities: %w", err)
	}

	var recs []*record
	for i, r := range results {
		problems = append(problems, r.problems...)
		if r.rec != nil {
			r.rec.vuln.file = items[i].name
			recs = append(recs, r.rec)
		}
	}

	if len(recs) == 0 {
		// Every record was skipped (a file that is not OSV named as the
		// database): a database in which nothing is vulnerable would
		// pass for the answer.
		const shown = 3
		errs := make([]error, 0, shown+1)
		for i := range problems[:min(len(problems), shown)] {
			errs = append(errs, problems[i])
		}
		if len(problems) > shown {
			errs = append(errs, fmt.Errorf("and %d more", len(problems)-shown))
		}
		return nil, nil, fmt.Errorf("load vulnerabilities: %w: every record skipped: %w", ErrNoSource, errors.Join(errs...))
	}

	var kev *KEVCatalog
	if opts.KEV != "" {
		var probs []LoadError
		kev, probs = loadKEV(opts.KEV)
		problems = append(problems, probs...)
	}
	var epss *EPSS
	if opts.EPSS != "" {
		var probs []LoadError
		epss, probs = loadEPSS(opts.EPSS)
		problems = append(problems, probs...)
	}
	db := build(recs, kev, epss, opts.Knowledge, len(problems))
	if extra := db.checkClaims(claims); len(extra) > 0 {
		problems = append(problems, extra...)
		db.stats.Skipped = len(problems)
	}
	return db, problems, nil
}

// checkClaims reports index/modules.json entries that the records do not
// bear out: a stale or tampered index. Records missing altogether were
// reported when they were read.
func (db *DB) checkClaims(claims []moduleClaim) []LoadError {
	var problems []LoadError
	for _, c := range claims {
		v := db.byID[normID(c.id)]
		if v == nil {
			continue
		}
		if !slices.ContainsFunc(v.Entry.Affected, func(a osv.Affected) bool { return a.Package.Name == c.module }) {
			problems = append(problems, LoadError{File: c.file, ID: c.id, Reason: fmt.Sprintf("lists module %s, which the record does not affect", c.module), Err: ErrInvalidRecord})
		}
	}
	return problems
}

// OpenDir loads the database that package dbupdate keeps under dir
// (normally <data>/vulndb): every <ECOSYSTEM>/all.zip, any other
// sub-directory as a directory of records or a vuln.go.dev layout, zip
// archives at the top, kev.json unless opts.KEV names another catalog, and
// epss.csv.gz unless opts.EPSS names another file.
// opts.Sources are read as well. A missing or empty dir is ErrNoDatabase.
func OpenDir(ctx context.Context, dir string, opts Options) (*DB, []LoadError, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("open vulnerability database %s: %w", dir, ErrNoDatabase)
		}
		return nil, nil, fmt.Errorf("open vulnerability database %s: %w", dir, err)
	}
	sources := slices.Clone(opts.Sources)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), "."):
		case e.IsDir():
			if fi, err := os.Stat(filepath.Join(p, "all.zip")); err == nil && !fi.IsDir() {
				p = filepath.Join(p, "all.zip")
			}
			sources = append(sources, p)
		case e.Name() == "kev.json":
			if opts.KEV == "" {
				opts.KEV = p
			}
		case e.Name() == "epss.csv.gz":
			if opts.EPSS == "" {
				opts.EPSS = p
			}
		case strings.HasSuffix(e.Name(), ".zip"):
			sources = append(sources, p)
		}
	}
	if len(sources) == 0 {
		return nil, nil, fmt.Errorf("open vulnerability database %s: %w", dir, ErrNoDatabase)
	}
	opts.Sources = sources
	return Load(ctx, opts)
}

// listSource lists the record files of one source.
func listSource(src string) (listing, error) {
	kind, err := Detect(src)
	if err != nil {
		return listing{}, err
	}
	switch kind {
	case KindZip:
		return listZip(src)
	case KindGoVulnDB:
		return listGoVulnDB(os.DirFS(src), src)
	case KindFile:
		if err := checkRecordFile(src); err != nil {
			return listing{}, err
		}
		return listing{items: []item{fileItem(os.DirFS(filepath.Dir(src)), filepath.Base(src), src)}}, nil
	default:
		its, err := listDir(src)
		return listing{items: its}, err
	}
}

// dbupdateFiles are metadata files package dbupdate writes beside records;
// no OSV id is "meta", "kev" or "epss", so skipping them loses no record.
var dbupdateFiles = []string{"meta.json", "kev.json", "kev.meta.json", "epss.meta.json"}

func isRecordName(name string) bool {
	if slices.Contains(dbupdateFiles, path.Base(name)) {
		return false
	}
	return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".json.gz")
}

func listDir(dir string) ([]item, error) {
	fsys := os.DirFS(dir)
	var items []item
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if isRecordName(p) {
			items = append(items, fileItem(fsys, p, filepath.Join(dir, filepath.FromSlash(p))))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list records in %s: %w", dir, err)
	}
	return items, nil
}

// inHiddenDir reports whether the slash-separated path p lies in a
// directory whose name starts with a dot (.git, an editor's or a tool's
// own), which listDir does not enter either: an archive of a directory
// holds what the directory does.
func inHiddenDir(p string) bool {
	dir, _ := path.Split(p)
	for _, elem := range strings.Split(dir, "/") {
		if elem != "." && strings.HasPrefix(elem, ".") {
			return true
		}
	}
	return false
}

// startsAsZip reports whether the file starts with a zip's local file
// header.
func startsAsZip(name string) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == "PK\x03\x04"
}

func listZip(name string) (listing, error) {
	zr, err := zip.OpenReader(name)
	if err != nil {
		if errors.Is(err, zip.ErrFormat) && startsAsZip(name) {
			// A download or copy of all.zip that stopped early.
			return listing{}, fmt.Errorf("open archive %s: it starts as a zip, but its end, where a zip keeps its directory, is missing: it is cut short (%w)", name, err)
		}
		return listing{}, fmt.Errorf("open archive %s: %w", name, err)
	}
	for _, f := range zr.File {
		if f.Name == "index/db.json" || f.Name == "index/db.json.gz" {
			l, err := listGoVulnDB(zr, name)
			if err != nil {
				zr.Close()
				return listing{}, err
			}
			l.closer = zr
			return l, nil
		}
	}
	l := listing{closer: zr}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !isRecordName(f.Name) || inHiddenDir(f.Name) {
			continue
		}
		l.items = append(l.items, fileItem(zr, f.Name, name+":"+f.Name))
	}
	return l, nil
}

// goVulnIndexEntry is one entry of vuln.go.dev's index/vulns.json.
type goVulnIndexEntry struct {
	ID string `json:"id"`
}

// goModuleIndexEntry is one entry of vuln.go.dev's index/modules.json.
type goModuleIndexEntry struct {
	Path  string             `json:"path"`
	Vulns []goVulnIndexEntry `json:"vulns"`
}

// listGoVulnDB lists the records of a vuln.go.dev layout in fsys: the ids
// of index/vulns.json when it is there, otherwise every ID/*.json(.gz);
// index/modules.json, when there, yields claims to check. name names the
// layout (directory or archive) in reports.
func listGoVulnDB(fsys fs.FS, name string) (listing, error) {
	join := func(p string) string {
		if strings.HasSuffix(name, ".zip") {
			return name + ":" + p
		}
		return filepath.Join(name, filepath.FromSlash(p))
	}
	if _, err := readMaybeGz(fsys, "index/db.json"); err != nil {
		return listing{}, fmt.Errorf("read vuln.go.dev index %s: %w", join("index/db.json"), err)
	}
	data, err := readMaybeGz(fsys, "index/vulns.json")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return listing{}, fmt.Errorf("read vuln.go.dev index %s: %w", join("index/vulns.json"), err)
	}
	var problems []LoadError
	var ids []string
	if err == nil {
		var index []goVulnIndexEntry
		if err := json.Unmarshal(data, &index); err != nil {
			return listing{}, fmt.Errorf("read vuln.go.dev index %s: %w", join("index/vulns.json"), err)
		}
		for i, e := range index {
			if e.ID == "" || strings.ContainsAny(e.ID, "/\\") {
				problems = append(problems, LoadError{File: join("index/vulns.json"), ID: fmt.Sprintf("[%d]", i), Reason: fmt.Sprintf("bad id %q", e.ID), Err: ErrInvalidRecord})
				continue
			}
			ids = append(ids, e.ID)
		}
	} else {
		entries, err := fs.ReadDir(fsys, "ID")
		if err != nil {
			return listing{}, fmt.Errorf("list vuln.go.dev records %s: %w", join("ID"), err)
		}
		for _, e := range entries {
			n := e.Name()
			if id, ok := strings.CutSuffix(n, ".json.gz"); ok {
				ids = append(ids, id)
			} else if id, ok := strings.CutSuffix(n, ".json"); ok {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
	}
	claims, err := readModuleClaims(fsys, join("index/modules.json"))
	if err != nil {
		return listing{}, err
	}
	items := make([]item, 0, len(ids))
	for _, id := range ids {
		p := "ID/" + id + ".json"
		if _, err := fs.Stat(fsys, p); err != nil {
			p += ".gz"
		}
		it := fileItem(fsys, p, join(p))
		it.wantID = id
		items = append(items, it)
	}
	return listing{items: items, problems: problems, claims: claims}, nil
}

// readModuleClaims reads index/modules.json of a vuln.go.dev layout; it is
// optional. file names it in reports.
func readModuleClaims(fsys fs.FS, file string) ([]moduleClaim, error) {
	data, err := readMaybeGz(fsys, "index/modules.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read vuln.go.dev index %s: %w", file, err)
	}
	var modules []goModuleIndexEntry
	if err := json.Unmarshal(data, &modules); err != nil {
		return nil, fmt.Errorf("read vuln.go.dev index %s: %w", file, err)
	}
	var claims []moduleClaim
	for _, m := range modules {
		for _, v := range m.Vulns {
			claims = append(claims, moduleClaim{file: file, module: m.Path, id: v.ID})
		}
	}
	return claims, nil
}

// readMaybeGz reads p from fsys, or p+".gz" gunzipped when p is absent.
func readMaybeGz(fsys fs.FS, p string) ([]byte, error) {
	data, err := readLimited(fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		return readLimited(fsys, p+".gz")
	}
	return data, err
}

func fileItem(fsys fs.FS, p, name string) item {
	return item{name: name, read: func(buf *bytes.Buffer) error { return readInto(buf, fsys, p) }}
}

// readLimited reads a file of at most MaxRecordSize bytes, gunzipping it
// when its name ends in .gz.
func readLimited(fsys fs.FS, p string) ([]byte, error) {
	var buf bytes.Buffer
	if err := readInto(&buf, fsys, p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readInto reads a file of at most MaxRecordSize bytes into buf (reset
// first), gunzipping it when its name ends in .gz.
func readInto(buf *bytes.Buffer, fsys fs.FS, p string) error {
	buf.Reset()
	f, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		br := bufio.NewReader(f)
		if head, _ := br.Peek(2); !bytes.Equal(head, []byte{0x1f, 0x8b}) {
			head, _ = br.Peek(sniffLen)
			return fmt.Errorf("not gzip-compressed: %s", describe(head))
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gunzip: %w", err)
		}
		defer zr.Close()
		r = zr
	} else if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size() <= MaxRecordSize {
		// ReadFrom wants MinRead bytes free even at the end: without them
		// it would copy the whole file once more.
		buf.Grow(int(fi.Size()) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, MaxRecordSize+1))
	if err != nil {
		return err
	}
	if n > MaxRecordSize {
		return fmt.Errorf("larger than %d bytes", MaxRecordSize)
	}
	return nil
}

// readItem reads, parses and validates one record file.
// buf is scratch space: the record keeps nothing of it.
func readItem(it item, buf *bytes.Buffer) result {
	err := it.read(buf)
	data := buf.Bytes()
	if err != nil {
		reason := "read: " + err.Error()
		// A name too long for the file system names no file there, as
		// none in an archive: missing either way.
		if it.wantID != "" && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENAMETOOLONG)) {
			reason = "listed in index/vulns.json but missing"
		}
		return result{problems: []LoadError{{File: it.name, ID: it.wantID, Reason: reason, Err: err}}}
	}
	rec, id, err := parseRecord(data)
	if err != nil {
		if id == "" {
			id = it.wantID
		}
		return result{problems: []LoadError{{File: it.name, ID: id, Reason: strings.TrimPrefix(err.Error(), ErrInvalidRecord.Error()+": "), Err: ErrInvalidRecord}}}
	}
	if it.wantID != "" && id != it.wantID {
		return result{problems: []LoadError{{File: it.name, ID: id, Reason: fmt.Sprintf("file is for %s but holds %s", it.wantID, id), Err: ErrInvalidRecord}}}
	}
	// One problem per part left out, each said to be only that part: the
	// same reason for a skipped record would read alike.
	res := result{rec: rec}
	for _, d := range rec.dropped {
		res.problems = append(res.problems, LoadError{File: it.name, ID: id, Reason: d.Error(), Err: ErrInvalidRecord})
	}
	return res
}

func loadKEV(p string) (*KEVCatalog, []LoadError) {
	f, err := os.Open(p)
	if err != nil {
		return nil, []LoadError{{File: p, Reason: err.Error(), Err: err}}
	}
	defer f.Close()
	c, probs, err := ParseKEV(f, p)
	if err != nil {
		// ParseKEV's errors name the file; the LoadError does already.
		reason := strings.TrimPrefix(err.Error(), "KEV catalog "+p+": ")
		return nil, append(probs, LoadError{File: p, Reason: reason, Err: err})
	}
	return c, probs
}

func loadEPSS(p string) (*EPSS, []LoadError) {
	f, err := os.Open(p)
	if err != nil {
		return nil, []LoadError{{File: p, Reason: err.Error(), Err: err}}
	}
	defer f.Close()
	e, probs, err := ParseEPSS(f, p)
	if err != nil {
		reason := strings.TrimPrefix(err.Error(), "EPSS file "+p+": ")
		return nil, append(probs, LoadError{File: p, Reason: reason, Err: err})
	}
	return e, probs
}
