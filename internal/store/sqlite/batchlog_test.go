package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/store"
)

// logged is a batch as a test appends and reads it.
type logged struct {
	Seq     int64
	Tenant  string
	Kind    store.BatchKind
	Payload string
}

// appendLogged appends one group to l and returns it numbered.
func appendLogged(t *testing.T, l *batchLog, group ...logged) []logged {
	t.Helper()
	ps := make([]*store.Pending, len(group))
	for i, b := range group {
		ps[i] = &store.Pending{Tenant: b.Tenant, Kind: b.Kind, Payload: []byte(b.Payload)}
	}
	seqs, err := l.append(ps)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	out := slices.Clone(group)
	for i := range out {
		out[i].Seq = seqs[i]
	}
	return out
}

// readLogged returns the batches of tenant in l after after.
func readLogged(t *testing.T, l *batchLog, tenant string, after int64) []logged {
	t.Helper()
	var got []logged
	if err := l.batches(tenant, after, func(seq int64, kind store.BatchKind, payload []byte) error {
		got = append(got, logged{seq, tenant, kind, string(payload)})
		return nil
	}); err != nil {
		t.Fatalf("batches of %s after %d: %v", tenant, after, err)
	}
	return got
}

func openTestLog(t *testing.T, dir string, segmentSize int64) *batchLog {
	t.Helper()
	l, err := openLog(dir, segmentSize, true, false)
	if err != nil {
		t.Fatalf("openLog(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.close() })
	return l
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, segmentPrefix+"*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return names
}

func batch(tenant, payload string) logged {
	return logged{Tenant: tenant, Kind: store.BatchTraceRequestS2, Payload: payload}
}

// TestLogTornTail cuts the last record of the last segment at every byte
// and reopens: the records before it come back, the file is cut to them,
// and the next append takes the number of the lost one.
func TestLogTornTail(t *testing.T) {
	src := t.TempDir()
	l := openTestLog(t, src, defaultSegmentSize)
	kept := appendLogged(t, l, batch("a", "first"), batch("b", "second"))
	kept = append(kept, appendLogged(t, l, batch("a", "third"))...)
	start := l.size()
	torn := appendLogged(t, l, batch("a", "the torn one"))[0]
	end := l.size()
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(src, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != end {
		t.Fatalf("segment of %d bytes, the log says %d", len(data), end)
	}
	for cut := start; cut < end; cut++ {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, segmentName(1))
			if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			l := openTestLog(t, dir, defaultSegmentSize)
			got := append(readLogged(t, l, "a", 0), readLogged(t, l, "b", 0)...)
			slices.SortFunc(got, func(x, y logged) int { return int(x.Seq - y.Seq) })
			if diff := cmp.Diff(got, kept); diff != "" {
				t.Errorf("batches after the cut (-got +want):\n%s", diff)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != start {
				t.Errorf("segment after open: %v, %v; want it cut to %d bytes", fi.Size(), err, start)
			}
			again := appendLogged(t, l, batch("a", "again"))
			if again[0].Seq != torn.Seq {
				t.Errorf("next append got %d, want %d, the number of the batch never acknowledged", again[0].Seq, torn.Seq)
			}
			if got := readLogged(t, l, "a", torn.Seq-1); !cmp.Equal(got, again) {
				t.Errorf("after the next append: %+v, want %+v", got, again)
			}
		})
	}
}

// TestLogCorrupt: damage to records that were acknowledged is an error
// that names the file and the offset, not data dropped in silence.
func TestLogCorrupt(t *testing.T) {
	for _, tt := range []struct {
		name    string
		damage  func(t *testing.T, dir string) // of three segments of 1 record each
		wantErr string
	}{
		{"CRCInFirstSegment", func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, segmentName(1)), -1) },
			segmentName(1) + " at offset 8: CRC-32C"},
		{"LengthInMiddleSegment", func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, segmentName(2)), segmentHeaderLen+2) },
			segmentName(2) + " at offset 8: record of"},
		{"CutMiddleSegment", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, segmentName(2)), int64(segmentHeaderLen+3)); err != nil {
				t.Fatal(err)
			}
		}, segmentName(2) + " at offset 8: 3 bytes left"},
		{"Magic", func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, segmentName(3)), 0) },
			segmentName(3) + " at offset 0: not a telemetry log segment"},
		{"NewerVersion", func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, segmentName(1)), segmentHeaderLen-1) },
			"is version 254, this evident knows 1: " + store.TooNewHint},
		{"SegmentsOverlap", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, segmentName(3)), filepath.Join(dir, segmentName(2)+".x")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, segmentName(2)), filepath.Join(dir, segmentName(3))); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, segmentName(2)+".x"), filepath.Join(dir, segmentName(2))); err != nil {
				t.Fatal(err)
			}
		}, segmentName(3) + " at offset 0: segment starts at 3, at or before 3 of the one before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir, 1) // every commit starts a segment
			for i := range 3 {
				appendLogged(t, l, batch("a", fmt.Sprint("batch ", i)))
			}
			if err := l.close(); err != nil {
				t.Fatal(err)
			}
			if got, want := segmentFiles(t, dir), []string{segmentName(1), segmentName(2), segmentName(3)}; !cmp.Equal(got, want) {
				t.Fatalf("segments %v, want %v", got, want)
			}
			tt.damage(t, dir)
			for _, readOnly := range []bool{false, true} {
				l, err := openLog(dir, 1, true, readOnly)
				if err == nil {
					l.close()
					t.Fatalf("openLog(readOnly %v) of a damaged log succeeded", readOnly)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("openLog(readOnly %v) = %v, want an error containing %q", readOnly, err, tt.wantErr)
				}
			}
		})
	}
}

// TestLogDamageInLastSegment: in the segment being written, a record
// that is not intact with intact records after it is damage to
// acknowledged batches, an error, and the file is left as it is; one
// with a sector's part of zeros, or with nothing intact after it, is the
// commit a crash interrupted, cut off.
func TestLogDamageInLastSegment(t *testing.T) {
	// Three commits in one segment; the second's payload spans a sector
	// boundary.
	long := strings.Repeat("x", 2*sectorSize)
	for _, tt := range []struct {
		name string
		// damage changes the segment's bytes; at are the records'
		// offsets and end the segment's size.
		damage  func(data []byte, at []int, end int)
		wantErr string // "" for a torn tail, cut at the second record
	}{
		{"payload byte of the first record", func(d []byte, at []int, _ int) { d[at[1]-1] ^= 1 },
			"at offset 8: CRC-32C"},
		{"length of the first record", func(d []byte, at []int, _ int) { d[at[0]+3] = 0x7f },
			"at offset 8: record of"},
		{"CRC of the second record", func(d []byte, at []int, _ int) { d[at[1]+4] ^= 1 },
			"CRC-32C"},
		{"second record's sector part unwritten", func(d []byte, at []int, _ int) {
			// The whole sector after the one the record starts in.
			from := (at[1]/sectorSize + 1) * sectorSize
			clear(d[from : from+sectorSize])
		}, ""},
		{"second record's header unwritten", func(d []byte, at []int, _ int) { clear(d[at[1] : at[1]+recordHeaderLen]) }, ""},
		{"last record's payload byte", func(d []byte, _ []int, end int) { d[end-1] ^= 1 }, "keep two"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir, defaultSegmentSize)
			var at []int
			var want []logged
			for _, p := range []string{"first", long, "third"} {
				at = append(at, max(int(l.size()), segmentHeaderLen))
				want = append(want, appendLogged(t, l, batch("a", p))...)
			}
			end := int(l.size())
			if err := l.close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, segmentName(1))
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(data, at, end)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, readOnly := range []bool{true, false} {
				l, err := openLog(dir, defaultSegmentSize, true, readOnly)
				if tt.wantErr != "" && tt.wantErr != "keep two" {
					if err == nil {
						l.close()
						t.Fatalf("openLog(readOnly %v) of a damaged segment succeeded", readOnly)
					}
					if !strings.Contains(err.Error(), segmentName(1)+" ") || !strings.Contains(err.Error(), tt.wantErr) ||
						!strings.Contains(err.Error(), "an intact record follows at offset") {
						t.Errorf("openLog(readOnly %v) = %v, want an error naming the segment, %q and the intact record after it", readOnly, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("openLog(readOnly %v): %v", readOnly, err)
				}
				keep, size := want[:1], at[1]
				if tt.wantErr == "keep two" {
					keep, size = want[:2], at[2]
				}
				got := readLogged(t, l, "a", 0)
				cut := l.cut
				l.close()
				switch {
				case readOnly && cut != nil:
					t.Errorf("openLog(readOnly) reports a cut, %v, having cut nothing", cut)
				case !readOnly && (cut == nil || cut.Path != path || cut.Offset != int64(size) || cut.Bytes != int64(end-size)):
					t.Errorf("openLog: cut %+v, want %d bytes of %s at offset %d", cut, end-size, path, size)
				}
				if diff := cmp.Diff(keep, got); diff != "" {
					t.Errorf("openLog(readOnly %v): batches (-want +got):\n%s", readOnly, diff)
				}
				if fi, err := os.Stat(path); err != nil || !readOnly && fi.Size() != int64(size) {
					t.Errorf("openLog(readOnly %v): segment of %d bytes, %v; want it cut to %d", readOnly, fi.Size(), err, size)
				}
			}
			if after, err := os.ReadFile(path); err != nil || tt.wantErr != "" && tt.wantErr != "keep two" && !bytes.Equal(after, data) {
				t.Errorf("the damaged segment was changed (%v)", err)
			}
		})
	}
}

// flipByte inverts the byte at off of the file at path; a negative off
// counts from the end.
func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(data)
	}
	data[off] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLogRotation: commits past the segment size start new segments,
// named by their first sequence number; reads go through all of them,
// before and after a reopen.
func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	const segmentSize = 200
	l := openTestLog(t, dir, segmentSize)
	var want []logged
	for i := range 20 {
		want = append(want, appendLogged(t, l, batch("a", strings.Repeat(fmt.Sprint(i%10), 40)))...)
	}
	// A commit larger than a segment gets one of its own.
	want = append(want, appendLogged(t, l, batch("a", strings.Repeat("x", 3*segmentSize)), batch("a", "after"))...)
	want = append(want, appendLogged(t, l, batch("a", "last"))...)
	files := segmentFiles(t, dir)
	if len(files) < 5 || !slices.IsSorted(files) {
		t.Fatalf("segments %v, want several in order", files)
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > segmentSize && f != segmentName(21) {
			t.Errorf("segment %s has %d bytes, over %d", f, fi.Size(), segmentSize)
		}
	}
	if diff := cmp.Diff(readLogged(t, l, "a", 0), want); diff != "" {
		t.Errorf("batches (-got +want):\n%s", diff)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, segmentSize)
	if diff := cmp.Diff(readLogged(t, l, "a", 5), want[5:]); diff != "" {
		t.Errorf("batches after 5 after reopen (-got +want):\n%s", diff)
	}
}

// TestCheckpointRemovesSegments: a segment goes once every tenant with
// batches in it has a checkpoint at or past them, never the one being
// written, and the batches of the other tenant stay readable.
func TestCheckpointRemovesSegments(t *testing.T) {
	dir := t.TempDir()
	s, err := open(t.Context(), dir, DefaultConfig(), options{migrations: migrationsOf(t), segmentSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.ForTenant("b")
	if err != nil {
		t.Fatal(err)
	}
	// One segment per commit: a, a, b, a+b (one commit), a.
	var seqs []int64
	for _, st := range []*Store{s, s, b} {
		seq, err := st.AppendBatch(t.Context(), store.BatchSpans, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	waitA, waitB := s.SubmitBatch(t.Context(), store.BatchSpans, []byte("x")), b.SubmitBatch(t.Context(), store.BatchSpans, []byte("x"))
	for _, w := range []func() (int64, error){waitA, waitB} {
		seq, err := w()
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	last, err := s.AppendBatch(t.Context(), store.BatchSpans, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	all := segmentFiles(t, dir)
	if len(all) < 4 {
		t.Fatalf("segments %v, want one per commit", all)
	}
	segmentOf := func(seq int64) string {
		i, _ := slices.BinarySearch(all, segmentName(seq))
		if i == len(all) || all[i] != segmentName(seq) {
			i--
		}
		return all[i]
	}
	steps := []struct {
		name       string
		st         *Store
		seq        int64
		wantGone   []string
		wantReadOf map[*Store][]int64
	}{
		// a's first two segments hold only a's batches.
		{"A", s, seqs[3], []string{segmentOf(seqs[0]), segmentOf(seqs[1])},
			map[*Store][]int64{s: {last}, b: {seqs[2], seqs[4]}}},
		// b's checkpoint frees the segments of b's and a's, not the last.
		{"B", b, seqs[4], []string{segmentOf(seqs[0]), segmentOf(seqs[1]), segmentOf(seqs[2]), segmentOf(seqs[3]), segmentOf(seqs[4])},
			map[*Store][]int64{s: {last}, b: nil}},
		{"AAll", s, last, nil, map[*Store][]int64{s: nil, b: nil}},
	}
	for _, step := range steps {
		if err := step.st.Checkpoint(t.Context(), step.seq, []byte("state")); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got := segmentFiles(t, dir)
		for _, gone := range step.wantGone {
			if slices.Contains(got, gone) {
				t.Errorf("%s: segment %s is still there (%v)", step.name, gone, got)
			}
		}
		if !slices.Contains(got, segmentOf(last)) {
			t.Errorf("%s: the segment being written, %s, is gone (%v)", step.name, segmentOf(last), got)
		}
		for st, want := range step.wantReadOf {
			var seqs []int64
			if err := st.Batches(t.Context(), 0, func(seq int64, _ store.BatchKind, _ []byte) error {
				seqs = append(seqs, seq)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(seqs, want) {
				t.Errorf("%s: batches of %s = %v, want %v", step.name, st.tenant, seqs, want)
			}
		}
	}
	// The sequence numbers go on above everything, after a reopen too.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = open(t.Context(), dir, DefaultConfig(), options{migrations: migrationsOf(t), segmentSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seq, err := s.AppendBatch(t.Context(), store.BatchSpans, []byte("x")); err != nil || seq != last+1 {
		t.Errorf("AppendBatch after reopen = %d, %v; want %d", seq, err, last+1)
	}
}

func migrationsOf(t *testing.T) []store.Migration {
	t.Helper()
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestPreviousVersionLog: batches the version before logged in SQLite's
// batches table replay before the segments' and in their tenant, the
// sequence numbers go on above theirs, and a checkpoint drops them.
func TestPreviousVersionLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The SQL of the version before's commit.
	for _, row := range []struct{ tenant, payload string }{{"default", "old 1"}, {"b", "old b"}, {"default", "old 2"}} {
		if _, err := s.write.ExecContext(t.Context(), `INSERT INTO batches (tenant, kind, payload, appended_at) VALUES (?, ?, ?, ?)`,
			row.tenant, "spans", row.payload, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seq, err := s.AppendBatch(t.Context(), store.BatchTraceRequestS2, []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if seq != 4 {
		t.Errorf("first append after the old rows got %d, want 4", seq)
	}
	read := func(st store.Store, after int64) []string {
		var got []string
		if err := st.Batches(t.Context(), after, func(seq int64, kind store.BatchKind, payload []byte) error {
			got = append(got, fmt.Sprintf("%d %s %s", seq, kind, payload))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := read(s, 0), []string{"1 spans old 1", "3 spans old 2", "4 otlp_traces_s2 new"}; !cmp.Equal(got, want) {
		t.Errorf("batches = %q, want %q", got, want)
	}
	b, err := s.Tenant("b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := read(b, 0), []string{"2 spans old b"}; !cmp.Equal(got, want) {
		t.Errorf("batches of b = %q, want %q", got, want)
	}
	if err := s.Checkpoint(t.Context(), 3, []byte("state")); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM batches`).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("rows in batches after the checkpoint: %d, %v; want b's one", rows, err)
	}
	if got, want := read(s, 0), []string{"4 otlp_traces_s2 new"}; !cmp.Equal(got, want) {
		t.Errorf("batches after the checkpoint = %q, want %q", got, want)
	}
	if err := b.Checkpoint(t.Context(), 4, []byte("state")); err != nil {
		t.Fatal(err)
	}
	if got := read(b, 0); got != nil {
		t.Errorf("batches of b after its checkpoint = %q, want none", got)
	}
	// The table is empty; its numbers stay used after a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seq, err := s.AppendBatch(t.Context(), store.BatchSpans, []byte("x")); err != nil || seq != 5 {
		t.Errorf("AppendBatch after reopen = %d, %v; want 5", seq, err)
	}
}

// TestSharedReadsLog: a store opened shared reads the segments of the
// one that writes them, and leaves a torn tail as it is.
func TestSharedReadsLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{"one", "two"} {
		if _, err := s.AppendBatch(t.Context(), store.BatchSpans, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, segmentName(1))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := []byte{40, 0, 0, 0, 1, 2} // a record header cut short
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := OpenShared(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	var got []string
	if err := shared.Batches(t.Context(), 0, func(seq int64, _ store.BatchKind, payload []byte) error {
		got = append(got, fmt.Sprint(seq, " ", string(payload)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1 one", "2 two"}; !cmp.Equal(got, want) {
		t.Errorf("shared Batches = %q, want %q", got, want)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != fi.Size() {
		t.Errorf("segment went from %d to %d bytes: the shared store changed it", fi.Size(), after.Size())
	}
}

// FuzzSegment reads a segment file of any content: it never panics, and
// every record it returns is one appendRecord writes, CRC included, at
// the offset it was read from.
func FuzzSegment(f *testing.F) {
	valid := segmentHeader()
	var err error
	for i, p := range []string{"one", "two", strings.Repeat("three", 100)} {
		if valid, err = appendRecord(valid, int64(i+1), "default", store.BatchTraceRequestS2, []byte(p)); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	f.Add(valid[:segmentHeaderLen+3])
	f.Add(append(slices.Clone(valid), make([]byte, 16)...))
	f.Add([]byte(segmentMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newSegmentReader(bytes.NewReader(data), "fuzz.seg", int64(len(data)), 0)
		off := int64(segmentHeaderLen)
		var prev int64
		for {
			rec, ok, err := r.next()
			var c *corruptError
			if errors.As(err, &c) && c.offset > 0 {
				// As the last segment: a torn tail, or damage that an
				// intact record after it shows.
				if err := tornTailOf(data, c, prev); err != nil {
					var d *corruptError
					if !errors.As(err, &d) || d.offset != c.offset || !strings.Contains(d.reason, "an intact record follows at offset") {
						t.Fatalf("tornTailOf: %v, want nil or the damage at %d with the intact record after it", err, c.offset)
					}
				}
			}
			if err != nil || !ok {
				return
			}
			prev = rec.seq
			want, err := appendRecord(nil, rec.seq, string(rec.tenant), store.BatchKind(rec.kind), rec.payload)
			if err != nil {
				t.Fatal(err)
			}
			if end := off + int64(len(want)); end > int64(len(data)) || !bytes.Equal(data[off:end], want) {
				t.Fatalf("record %d at %d is not the bytes it was read from", rec.seq, off)
			}
			off += int64(len(want))
		}
	})
}

// TestLogBeforeSegments opens a store the version before wrote
// (testdata/log-before-segments): its batches replay in their tenants,
// new ones are numbered above them, and checkpoints drop them.
func TestLogBeforeSegments(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "log-before-segments", FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.ForTenant("team-b")
	if err != nil {
		t.Fatal(err)
	}
	read := func(st *Store) []string {
		t.Helper()
		after, _, err := st.LoadCheckpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := st.Batches(t.Context(), after, func(seq int64, kind store.BatchKind, payload []byte) error {
			got = append(got, fmt.Sprintf("%d %s %s", seq, kind, payload))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, step := range []struct {
		name       string
		do         func() error
		wantS      []string
		wantB      []string
		wantRowsOf map[string]int
	}{
		{"Opened", func() error { return nil },
			[]string{"3 otlp_traces_s2 default 3", "4 spans default 4"},
			[]string{"2 profile_request_s2 team-b 2", "5 otlp_traces_s2 team-b 5"},
			map[string]int{"default": 2, "team-b": 2}},
		{"Appended", func() error {
			for _, st := range []*Store{s, b} {
				if _, err := st.AppendBatch(t.Context(), store.BatchTraceRequestS2, []byte(st.tenant+" new")); err != nil {
					return err
				}
			}
			return nil
		},
			[]string{"3 otlp_traces_s2 default 3", "4 spans default 4", "6 otlp_traces_s2 default new"},
			[]string{"2 profile_request_s2 team-b 2", "5 otlp_traces_s2 team-b 5", "7 otlp_traces_s2 team-b new"},
			map[string]int{"default": 2, "team-b": 2}},
		{"CheckpointDefault", func() error { return s.Checkpoint(t.Context(), 4, []byte("default model@4")) },
			[]string{"6 otlp_traces_s2 default new"},
			[]string{"2 profile_request_s2 team-b 2", "5 otlp_traces_s2 team-b 5", "7 otlp_traces_s2 team-b new"},
			map[string]int{"default": 0, "team-b": 2}},
		{"CheckpointTeamB", func() error { return b.Checkpoint(t.Context(), 7, []byte("team-b model@7")) },
			[]string{"6 otlp_traces_s2 default new"},
			nil,
			map[string]int{"default": 0, "team-b": 0}},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := read(s); !cmp.Equal(got, step.wantS) {
			t.Errorf("%s: default's batches = %q, want %q", step.name, got, step.wantS)
		}
		if got := read(b); !cmp.Equal(got, step.wantB) {
			t.Errorf("%s: team-b's batches = %q, want %q", step.name, got, step.wantB)
		}
		for tenant, want := range step.wantRowsOf {
			var n int
			if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM batches WHERE tenant = ?`, tenant).Scan(&n); err != nil || n != want {
				t.Errorf("%s: %d rows of %s in the batches table, %v; want %d", step.name, n, tenant, err, want)
			}
		}
	}
}

// TestEmptySeesLog: a tenant whose only rows are batches in the log's
// segments is not empty, to the store that writes them and to a shared
// store opened before they were written (evident token, beside serve).
func TestEmptySeesLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shared, err := OpenShared(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	a, err := s.ForTenant("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AppendBatch(t.Context(), store.BatchSpans, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		st   *Store
	}{{"Writer", s}, {"Shared", shared}} {
		t.Run(tt.name, func(t *testing.T) {
			for id, want := range map[string]bool{"a": false, "b": true, store.DefaultTenant: true} {
				ts, err := tt.st.ForTenant(id)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := ts.Empty(t.Context()); err != nil || got != want {
					t.Errorf("Empty of %q = %v, %v; want %v", id, got, err, want)
				}
			}
		})
	}
}

// TestLogSegmentNotCreated: a commit that needs a new segment and cannot
// have it fails with the reason (until 2026-12-07 the reopening of the
// segment before overwrote it: "create telemetry log segment:
// %!w(<nil>)"), the segment before stays the one written, and the next
// commit tries again.
func TestLogSegmentNotCreated(t *testing.T) {
	const segmentSize = 4096
	dir := t.TempDir()
	l := openTestLog(t, dir, segmentSize)
	want := appendLogged(t, l, batch("a", "first"))
	// A directory where the next segment goes: it cannot be created.
	blocker := filepath.Join(dir, segmentName(want[0].Seq+1))
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := l.append([]*store.Pending{{Tenant: "a", Kind: store.BatchSpans, Payload: make([]byte, segmentSize)}})
	if err == nil || !strings.Contains(err.Error(), "create telemetry log segment: ") || !strings.Contains(err.Error(), blocker) {
		t.Errorf("append needing a segment that cannot be created: %v, want the reason", err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	want = append(want, appendLogged(t, l, batch("a", "second"))...)
	want = append(want, appendLogged(t, l, batch("a", strings.Repeat("x", segmentSize)))...)
	if diff := cmp.Diff(readLogged(t, l, "a", 0), want); diff != "" {
		t.Errorf("batches (-got +want):\n%s", diff)
	}
	if got := segmentFiles(t, dir); len(got) != 2 {
		t.Errorf("segments %v, want 2", got)
	}
}
