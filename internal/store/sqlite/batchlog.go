package sqlite

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/evidentsec/evident/internal/store"
)

// batchLog is the telemetry log of the SQLite store: append-only segment
// files in the data directory (segment.go has their format). SQLite
// keeps the rest, the checkpoints among them. A group commit is one write
// of its records and one fdatasync; SQLite wrote every batch twice (its
// WAL, then the database file), one pwrite per 4 KiB page.
//
// Concurrency: append runs on the committer's goroutine only, which
// alone touches the open file; mu guards what the readers and
// checkpoints see: the segments, their committed sizes and the last
// sequence number.
type batchLog struct {
	dir         string
	segmentSize int64
	// sync makes each commit wait for fdatasync (synchronous "full").
	// Without it a commit survives a crash of the process, not of the
	// machine; segments are still synced when they are full and at
	// Close.
	sync     bool
	readOnly bool

	mu       sync.Mutex
	segments []*segment // in log order; the last one is written
	last     int64      // the highest sequence number handed out or known
	failed   error      // set when a failed write may have left the log unknown

	// The committer's own: the last segment open for writing (nil until
	// the first commit of an empty log) and the buffer of a commit.
	f   *os.File
	buf []byte

	// cut is what opening the log cut off its last segment, or nil.
	cut *TailCut
}

// TailCut is the record that opening the log cut off the end of its last
// segment: a commit that a crash interrupted before its sync returned,
// so never acknowledged. The store opened and lost nothing it had
// acknowledged (Store.TailCut), but the cut is worth a line in the log:
// it says the process before did not stop cleanly.
type TailCut struct {
	// Path is the segment's file; Offset where its last intact record
	// ends, which is its size now; Bytes how many were cut after it.
	Path   string
	Offset int64
	Bytes  int64
	// Reason is what was wrong with the record at Offset.
	Reason string
}

func (c *TailCut) Error() string {
	return fmt.Sprintf("cut %d bytes off the end of %s at offset %d (%s): a commit that a crash interrupted before it was synced, never acknowledged",
		c.Bytes, c.Path, c.Offset, c.Reason)
}

// segment is one segment file as the log knows it.
type segment struct {
	path  string
	first int64 // from its name
	size  int64 // the committed bytes: the header and whole records
	// lastSeq is, per tenant, the highest sequence number in the
	// segment: a checkpoint of every tenant at or above it makes the
	// segment removable.
	lastSeq map[string]int64
}

// maxKeptBuffer is the largest commit buffer kept for the next commit.
const maxKeptBuffer = 32 << 20

// openLog reads the segments in dir. A record that is not intact at the
// end of the last segment is a commit that a crash interrupted before
// its sync returned, so before it was acknowledged: openLog cuts it off
// (unless readOnly, which leaves the files as they are and reads up to
// it). A record that is not intact anywhere else, or in the last
// segment with intact records after it (tornTail), is an error naming
// the file and offset: acknowledged data is never dropped silently.
func openLog(dir string, segmentSize int64, sync, readOnly bool) (*batchLog, error) {
	l := &batchLog{dir: dir, segmentSize: segmentSize, sync: sync, readOnly: readOnly}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if first, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			l.segments = append(l.segments, &segment{path: filepath.Join(dir, e.Name()), first: first, lastSeq: map[string]int64{}})
		}
	}
	slices.SortFunc(l.segments, func(a, b *segment) int { return cmp.Compare(a.first, b.first) })
	for i := 0; i < len(l.segments); i++ {
		seg, isLast := l.segments[i], i == len(l.segments)-1
		if seg.first <= l.last {
			return nil, &corruptError{path: seg.path, reason: fmt.Sprintf("segment starts at %d, at or before %d of the one before", seg.first, l.last)}
		}
		err := l.scan(seg)
		if errors.Is(err, fs.ErrNotExist) && readOnly {
			// Removed by a checkpoint of the process that writes.
			l.segments = slices.Delete(l.segments, i, i+1)
			i--
			continue
		}
		var c *corruptError
		switch {
		case err == nil:
		case !isLast || !errors.As(err, &c):
			return nil, err
		case c.offset == 0 && seg.size <= int64(segmentHeaderLen):
			// Created, but its header was not synced: it never held a
			// record.
			if !readOnly {
				if err := os.Remove(seg.path); err != nil {
					return nil, err
				}
			}
			l.segments = l.segments[:i]
		case c.offset == 0:
			return nil, err
		default:
			// The torn tail, unless what follows says otherwise.
			if err := tornTail(seg.path, c, lastOf(seg, max(l.last, seg.first-1))); err != nil {
				return nil, err
			}
			if !readOnly {
				if err := truncateSegment(seg.path, c.offset); err != nil {
					return nil, err
				}
				l.cut = &TailCut{Path: seg.path, Offset: c.offset, Bytes: seg.size - c.offset, Reason: c.reason}
			}
			seg.size = c.offset
		}
		if i < len(l.segments) {
			l.last = max(l.last, seg.first-1)
			for _, s := range seg.lastSeq {
				l.last = max(l.last, s)
			}
		}
	}
	if !readOnly && len(l.segments) > 0 {
		if l.f, err = os.OpenFile(l.segments[len(l.segments)-1].path, os.O_WRONLY, 0); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// lastOf returns the highest sequence number of seg's records read so
// far, or prev when there is none.
func lastOf(seg *segment, prev int64) int64 {
	for _, s := range seg.lastSeq {
		prev = max(prev, s)
	}
	return prev
}

// scan reads every record of seg, up to the end of the file, noting the
// highest sequence number of each tenant and the size up to the last
// intact record.
func (l *batchLog) scan(seg *segment) error {
	f, err := os.Open(seg.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	seg.size = fi.Size()
	r := newSegmentReader(f, seg.path, fi.Size(), max(l.last, seg.first-1))
	for {
		rec, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		seg.lastSeq[string(rec.tenant)] = rec.seq
	}
}

// truncateSegment cuts the segment at path to size, durably.
func truncateSegment(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// lastSeq returns the highest sequence number handed out or known.
func (l *batchLog) lastSeq() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// raiseLast makes the next sequence number at least seq+1: the numbers
// SQLite's batches table and the checkpoints have used.
func (l *batchLog) raiseLast(seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = max(l.last, seq)
}

// append writes the batches of group as one write and one fdatasync
// (with sync) and returns their sequence numbers. It runs on the
// committer's goroutine only.
func (l *batchLog) append(group []*store.Pending) ([]int64, error) {
	l.mu.Lock()
	failed, next := l.failed, l.last+1
	l.mu.Unlock()
	if failed != nil {
		return nil, failed
	}
	seqs := make([]int64, len(group))
	buf := l.buf[:0]
	for i, p := range group {
		seqs[i] = next + int64(i)
		var err error
		if buf, err = appendRecord(buf, seqs[i], p.Tenant, p.Kind, p.Payload); err != nil {
			return nil, err
		}
	}
	if cap(buf) <= maxKeptBuffer {
		l.buf = buf
	}
	seg, err := l.segmentFor(next, int64(len(buf)))
	if err != nil {
		return nil, err
	}
	off := seg.size // only this goroutine changes it
	if _, err := l.f.WriteAt(buf, off); err != nil {
		// A part of the group may be on disk: cut it off, or a later
		// commit would number its batches again after those bytes.
		if terr := l.f.Truncate(off); terr != nil {
			l.fail(fmt.Errorf("telemetry log %s: cut off a failed write: %w", seg.path, terr))
		}
		return nil, fmt.Errorf("write %s: %w", seg.path, err)
	}
	if l.sync {
		if err := fdatasync(l.f); err != nil {
			// After a failed sync the kernel may have dropped the pages
			// it could not write: what the file holds is unknown.
			err = fmt.Errorf("sync %s: %w", seg.path, err)
			l.fail(err)
			return nil, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seg.size = off + int64(len(buf))
	for i, p := range group {
		seg.lastSeq[p.Tenant] = seqs[i]
	}
	l.last = seqs[len(seqs)-1]
	return seqs, nil
}

// fail stops every later append: the log is not known to be intact past
// what was committed. Reopening the store reads what is.
func (l *batchLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = fmt.Errorf("%w (appends stopped; reopen the store)", err)
}

// segmentFor returns the segment a commit of size bytes, whose first
// batch is first, is written to: the last one, or a new one when there is
// none or the last one would grow past segmentSize.
func (l *batchLog) segmentFor(first, size int64) (*segment, error) {
	l.mu.Lock()
	var cur *segment
	if n := len(l.segments); n > 0 {
		cur = l.segments[n-1]
	}
	l.mu.Unlock()
	if cur != nil && (cur.size <= int64(segmentHeaderLen) || cur.size+size <= l.segmentSize) {
		return cur, nil
	}
	if cur != nil {
		if !l.sync {
			if err := fdatasync(l.f); err != nil {
				err = fmt.Errorf("sync %s: %w", cur.path, err)
				l.fail(err)
				return nil, err
			}
		}
		err := l.f.Close()
		l.f = nil
		if err != nil {
			// Its last commit may not be durable: stop, as for a sync.
			err = fmt.Errorf("close %s: %w", cur.path, err)
			l.fail(err)
			return nil, err
		}
	}
	seg := &segment{path: filepath.Join(l.dir, segmentName(first)), first: first, size: int64(segmentHeaderLen), lastSeq: map[string]int64{}}
	f, err := createSegment(seg.path)
	if err != nil {
		if cur != nil {
			// Keep writing the last one; the next commit tries again.
			var rerr error
			if l.f, rerr = os.OpenFile(cur.path, os.O_WRONLY, 0); rerr != nil {
				l.fail(fmt.Errorf("reopen %s: %w", cur.path, rerr))
			}
		}
		return nil, fmt.Errorf("create telemetry log segment: %w", err)
	}
	l.f = f
	l.mu.Lock()
	defer l.mu.Unlock()
	l.segments = append(l.segments, seg)
	return seg, nil
}

// createSegment creates the segment file at path with its header, both
// synced, the directory entry too, so that a crash leaves a segment whole
// or none.
func createSegment(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := writeHeader(f); err != nil {
		f.Close()
		os.Remove(path) // the error that made us give up is the one to report
		return nil, err
	}
	return f, nil
}

func writeHeader(f *os.File) error {
	if _, err := f.Write(segmentHeader()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(f.Name()))
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// batches calls fn for every record of tenant above after, in order,
// reading only what was committed when it started.
func (l *batchLog) batches(tenant string, after int64, fn func(seq int64, kind store.BatchKind, payload []byte) error) error {
	files, err := l.open(tenant, after)
	if err != nil {
		return err
	}
	defer func() {
		for _, sf := range files {
			sf.f.Close()
		}
	}()
	var buf []byte
	for _, sf := range files {
		r := newSegmentReader(io.NewSectionReader(sf.f, 0, sf.size), sf.path, sf.size, sf.first-1)
		r.buf = buf
		for {
			rec, ok, err := r.next()
			if err != nil {
				return fmt.Errorf("read batches: %w", err)
			}
			if !ok {
				break
			}
			if rec.seq > after && string(rec.tenant) == tenant {
				if err := fn(rec.seq, store.BatchKind(rec.kind), rec.payload); err != nil {
					return err
				}
			}
		}
		buf = r.buf
	}
	return nil
}

// holds reports whether a segment has a record of tenant.
func (l *batchLog) holds(tenant string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, seg := range l.segments {
		if seg.lastSeq[tenant] > 0 {
			return true
		}
	}
	return false
}

// segmentFile is a segment opened for reading up to its committed size.
type segmentFile struct {
	f     *os.File
	path  string
	first int64
	size  int64
}

// open opens, under mu, the segments that hold records of tenant above
// after, so that a checkpoint may remove them while they are read.
func (l *batchLog) open(tenant string, after int64) ([]segmentFile, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var files []segmentFile
	for _, seg := range l.segments {
		if seg.lastSeq[tenant] <= after {
			continue
		}
		f, err := os.Open(seg.path)
		if err != nil {
			for _, sf := range files {
				sf.f.Close()
			}
			return nil, fmt.Errorf("read batches: %w", err)
		}
		files = append(files, segmentFile{f: f, path: seg.path, first: seg.first, size: seg.size})
	}
	return files, nil
}

// drop removes every segment, but the one being written, whose records
// are all covered by the checkpoints, given as the checkpoint's sequence
// number per tenant: for each tenant with records in it, the highest is
// at or below that tenant's checkpoint. The checkpoints are committed
// before: a crash before the files are gone leaves segments that the next
// open reads and replay skips (every record in them is at or below its
// tenant's checkpoint), and the next checkpoint removes. A segment that
// cannot be removed now (a file system that refuses to remove an open
// file) stays for the next checkpoint to try again: the checkpoint is
// stored all the same, and the caller is not told it failed.
func (l *batchLog) drop(checkpoints map[string]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.segments[:0]
	for i, seg := range l.segments {
		covered := i < len(l.segments)-1
		for tenant, seq := range seg.lastSeq {
			covered = covered && seq <= checkpoints[tenant]
		}
		if covered {
			if err := os.Remove(seg.path); err == nil || errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		kept = append(kept, seg)
	}
	clear(l.segments[len(kept):])
	l.segments = kept
}

// size returns the committed bytes of every segment.
func (l *batchLog) size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, seg := range l.segments {
		n += seg.size
	}
	return n
}

// close syncs and closes the segment being written. Call it after the
// committer stopped.
func (l *batchLog) close() error {
	if l.f == nil {
		return nil
	}
	var errs []error
	if !l.sync {
		errs = append(errs, fdatasync(l.f))
	}
	errs = append(errs, l.f.Close())
	l.f = nil
	return errors.Join(errs...)
}
