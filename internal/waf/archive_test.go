package waf

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/knowledge"
)

// The PAX time values of commons-compress's regression test for
// CVE-2023-42503 (TarArchiveEntryTest.testPaxTimeFieldsForInvalidValues):
// exponent notation, and a number with 15,000 copies of Long.MAX_VALUE
// as its fraction (a random long before the point there; a fixed one here).
var (
	paxExponent     = "9e9999999"
	paxExponentUp   = "9E9999999"
	paxLongFraction = "1647221460." + strings.Repeat("9223372036854775807", 15000)
)

// tarFile is one entry of an archive the tests build.
type tarFile struct {
	hdr  tar.Header
	data string
}

// buildTar writes files with archive/tar, gzip-compressed if gz.
func buildTar(t testing.TB, gz bool, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, f := range files {
		h := f.hdr
		h.Size = int64(len(f.data))
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// archiveSamples builds, by sample name, the bodies that the exploit
// knowledge of CVE-2023-42503 and the legitimate tar corpus ship
// base64-encoded: archive/tar writes the malformed PAX records of the
// fix's regression test, and the records real archivers write.
func archiveSamples(t testing.TB) map[string][]byte {
	t.Helper()
	mtime := time.Unix(1647221103, 599853900).UTC()
	item := tarFile{tar.Header{Name: "inventory/tea-1.json", ModTime: mtime.Truncate(time.Second), Format: tar.FormatPAX}, `{"sku":"tea-1","qty":12}` + "\n"}
	withRecords := func(f tarFile, recs map[string]string) tarFile {
		f.hdr.PAXRecords = recs
		return f
	}
	global := func(recs map[string]string) tarFile {
		return tarFile{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: recs}}
	}
	subSecond := tarFile{tar.Header{Name: "inventory/tea-2.json", ModTime: mtime, AccessTime: time.Unix(1647221460, 706927200), ChangeTime: time.Unix(1647221339, 700505300), Format: tar.FormatPAX}, `{"sku":"tea-2","qty":3}` + "\n"}
	return map[string][]byte{
		// Exploit variants.
		"exponent in LIBARCHIVE.creationtime":                         buildTar(t, false, withRecords(item, map[string]string{"LIBARCHIVE.creationtime": paxExponent})),
		"exponent in upper case in a global header's mtime":           buildTar(t, false, global(map[string]string{"mtime": paxExponentUp}), item),
		"a 285,000-digit fraction in a global atime, gzip-compressed": buildTar(t, true, global(map[string]string{"atime": paxLongFraction}), item),
		"exponent in LIBARCHIVE.creationtime, gzip-compressed":        buildTar(t, true, withRecords(item, map[string]string{"LIBARCHIVE.creationtime": paxExponent})),
		// The legitimate corpus.
		"PAX archive with sub-second times":       buildTar(t, false, subSecond),
		"PAX archive with a creation time":        buildTar(t, false, withRecords(item, map[string]string{"LIBARCHIVE.creationtime": "1647221340.72350900"})),
		"PAX archive with a time before 1970":     buildTar(t, false, tarFile{tar.Header{Name: "old.txt", ModTime: time.Unix(-2, 500_000_000), Format: tar.FormatPAX}, "old\n"}),
		"USTAR archive of a directory and a file": buildTar(t, false, tarFile{tar.Header{Name: "inventory/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime.Truncate(time.Second), Format: tar.FormatUSTAR}, ""}, tarFile{tar.Header{Name: "inventory/tea-3.json", ModTime: mtime.Truncate(time.Second), Format: tar.FormatUSTAR}, `{"sku":"tea-3","qty":1}` + "\n"}),
		"gzip-compressed PAX archive":             buildTar(t, true, subSecond),
	}
}

// TestArchiveSamplesBuiltByCode: every base64 body the exploit knowledge
// of CVE-2023-42503 and CVE-2024-25710 and the legitimate tar and dump
// corpora ship is the archive the code above writes for it (archive/tar, or
// buildDump; a mismatch prints the base64 to ship); Go's own tar reader
// reads each legitimate tar whole; the inspector (and, for uncompressed
// tars, the SecLang approximation) finds each variant, and nothing in a
// legitimate archive.
func TestArchiveSamplesBuiltByCode(t *testing.T) {
	x, err := knowledge.DefaultExploits()
	if err != nil {
		t.Fatal(err)
	}
	legit, err := legitimateCorpus()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := checkDetections(knowledge.Check{Kind: "tar_pax_time"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	paxRx := regexp.MustCompile(strings.TrimPrefix(ds[0].links[0].op, "@rx "))
	for _, tt := range []struct {
		id, format string
		built      map[string][]byte
		measure    func(string) uint64
		rx         *regexp.Regexp // the SecLang approximation, for uncompressed archives
	}{
		{"CVE-2023-42503", "tar", archiveSamples(t), tarBadPaxTimes, paxRx},
		{"CVE-2024-25710", "dump", dumpSamples(t), dumpDirectoryLoops, nil},
		{"CVE-2024-26308", "pack200", pack200Samples(t), pack200Overcounts, nil},
	} {
		es := x.Lookup(tt.id)
		if len(es) != 1 {
			t.Fatalf("%d entries for %s", len(es), tt.id)
		}
		seen := 0
		for _, set := range []struct {
			exploit bool
			samples []Sample
		}{{true, es[0].Variants}, {false, legit[tt.format]}} {
			for _, s := range set.samples {
				want, ok := tt.built[s.Name]
				if !ok {
					t.Errorf("%s %q: no archive built for it", tt.id, s.Name)
					continue
				}
				seen++
				body, err := s.Body()
				if err != nil {
					t.Fatal(err)
				}
				if body != string(want) {
					t.Errorf("%s %q: the shipped payload is not the archive the code writes; ship\n%s", tt.id, s.Name, base64.StdEncoding.EncodeToString(want))
				}
				bad := tt.measure(string(want))
				compressed := bytes.HasPrefix(want, []byte("\x1f\x8b"))
				switch {
				case set.exploit && bad == 0:
					t.Errorf("%s %q: the inspector finds nothing", tt.id, s.Name)
				case !set.exploit && bad != 0:
					t.Errorf("legitimate %s %q: the inspector finds %d", tt.format, s.Name, bad)
				case tt.rx != nil && set.exploit && !compressed && !tt.rx.Match(want):
					t.Errorf("%s %q: the SecLang expression misses it", tt.id, s.Name)
				case tt.rx != nil && !set.exploit && tt.rx.Match(want):
					t.Errorf("legitimate %s %q: the SecLang expression matches it", tt.format, s.Name)
				}
				if !set.exploit && tt.format == "tar" {
					var r io.Reader = bytes.NewReader(want)
					if compressed {
						if r, err = gzip.NewReader(r); err != nil {
							t.Fatal(err)
						}
					}
					tr := tar.NewReader(r)
					for {
						if _, err := tr.Next(); errors.Is(err, io.EOF) {
							break
						} else if err != nil {
							t.Errorf("legitimate %q: archive/tar reads: %v", s.Name, err)
							break
						}
					}
				}
			}
		}
		if seen != len(tt.built) {
			t.Errorf("%s: %d of the %d built archives are shipped", tt.id, seen, len(tt.built))
		}
	}
}

// dumpEntry is one record of a DUMP directory's data, written with the
// usual length (8 bytes and the name, rounded up to 4; the last record
// runs to the end of the block), or 0 where zero says so. A name with a
// "." other than "." and ".." is a file, any other a directory.
type dumpEntry struct {
	ino  uint32
	name string
	zero bool
}

// dumpNode is a directory (entries) or a regular file (data) of a DUMP
// archive.
type dumpNode struct {
	ino     uint32
	entries []dumpEntry
	data    string
}

// buildDump writes an uncompressed-block DUMP archive the way
// commons-compress's DumpArchiveInputStream reads it: the TAPE summary, empty
// CLRI and BITS segments, an INODE segment with one data record per inode,
// and END; every header checksummed. gz compresses the whole with gzip.
func buildDump(t testing.TB, gz bool, inodes ...dumpNode) []byte {
	t.Helper()
	var out bytes.Buffer
	header := func(typ, ino uint32, mode uint16, size uint64, count uint32) {
		h := make([]byte, dumpRecord)
		le := binary.LittleEndian
		le.PutUint32(h[0:], typ)
		le.PutUint32(h[4:], 1647221103) // dump date
		le.PutUint32(h[20:], ino)
		le.PutUint32(h[24:], dumpMagic)
		le.PutUint16(h[32:], mode)
		le.PutUint64(h[40:], size)
		le.PutUint32(h[160:], count)
		for i := range count {
			h[164+i] = 1 // no hole
		}
		if typ == dumpTape {
			copy(h[676:], "inventory")
			le.PutUint32(h[896:], 1) // records per block
		}
		var sum uint32
		for i := 0; i < 256; i++ {
			sum += le.Uint32(h[4*i:])
		}
		le.PutUint32(h[28:], dumpChecksum-sum)
		out.Write(h)
	}
	header(dumpTape, 0, 0, 0, 0)
	header(dumpClri, 0, 0, 0, 0)
	header(dumpBits, 0, 0, 0, 0)
	for _, in := range inodes {
		block := make([]byte, dumpRecord)
		if in.entries == nil {
			header(dumpInode, in.ino, 0o100644, uint64(len(in.data)), 1)
			copy(block, in.data)
			out.Write(block)
			continue
		}
		header(dumpInode, in.ino, 0o40755, dumpRecord, 1)
		i := 0
		for k, e := range in.entries {
			l := (8 + len(e.name) + 3) &^ 3
			if k == len(in.entries)-1 {
				l = dumpRecord - i
			}
			if e.zero {
				l = 0
			}
			binary.LittleEndian.PutUint32(block[i:], e.ino)
			binary.LittleEndian.PutUint16(block[i+4:], uint16(l))
			if !strings.Contains(e.name, ".") || e.name == "." || e.name == ".." {
				block[i+6] = 4 // directory
			} else {
				block[i+6] = 8 // regular file
			}
			block[i+7] = byte(len(e.name))
			copy(block[i+8:], e.name)
			if l == 0 {
				l = (8 + len(e.name) + 3) &^ 3
			}
			i += l
		}
		out.Write(block)
	}
	header(dumpEnd, 0, 0, 0, 0)
	if !gz {
		return out.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(out.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// dumpSamples builds, by sample name, the DUMP bodies of the exploit
// knowledge of CVE-2024-25710 and of the legitimate dump corpus.
func dumpSamples(t testing.TB) map[string][]byte {
	t.Helper()
	dot := []dumpEntry{{ino: 2, name: "."}, {ino: 2, name: ".."}}
	root := func(es ...dumpEntry) dumpNode {
		return dumpNode{ino: 2, entries: append(append([]dumpEntry{}, dot...), es...)}
	}
	dir := func(ino uint32, es ...dumpEntry) dumpNode {
		return dumpNode{ino: ino, entries: append([]dumpEntry{{ino: ino, name: "."}, {ino: 2, name: ".."}}, es...)}
	}
	legit := []dumpNode{root(dumpEntry{ino: 3, name: "inventory"}), dir(3, dumpEntry{ino: 4, name: "tea-1.json"}), {ino: 4, data: `{"sku":"tea-1","qty":12}` + "\n"}}
	return map[string][]byte{
		// Exploit variants.
		"a directory record of length 0":                  buildDump(t, false, dumpNode{ino: 2, entries: []dumpEntry{{ino: 2, name: ".", zero: true}}}),
		"a record of length 0 after . and ..":             buildDump(t, false, root(dumpEntry{ino: 3, name: "inventory", zero: true}, dumpEntry{ino: 4, name: "tea-1.json"})),
		"two directories inside each other":               buildDump(t, false, root(dumpEntry{ino: 3, name: "a"}), dir(3, dumpEntry{ino: 4, name: "b"}), dir(4, dumpEntry{ino: 3, name: "a"})),
		"a directory record of length 0, gzip-compressed": buildDump(t, true, dumpNode{ino: 2, entries: []dumpEntry{{ino: 2, name: ".", zero: true}}}),
		// The legitimate corpus.
		"a directory and a file":          buildDump(t, false, legit...),
		"gzip-compressed, as dump | gzip": buildDump(t, true, legit...),
	}
}

// pack200Header writes a Pack200 segment header (magic, version 150.7,
// options, then every field its options call for, in the specification's
// order, each in the UNSIGNED5 coding), followed by tail. fields are the
// header's values after the options; options that add fields must come
// with them.
func pack200Header(gz bool, options uint64, fields []uint64, tail string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xca, 0xfe, 0xd0, 0x0d})
	unsigned5 := func(v uint64) {
		for i := range 5 {
			if v < 192 || i == 4 {
				b.WriteByte(byte(v))
				return
			}
			b.WriteByte(byte(192 + (v-192)%64))
			v = (v - 192) / 64
		}
	}
	for _, v := range append([]uint64{7, 150, options}, fields...) {
		unsigned5(v)
	}
	b.WriteString(tail)
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b.Bytes())
	zw.Close()
	return z.Bytes()
}

// pack200Samples builds, by sample name, the Pack200 bodies of the exploit
// knowledge of CVE-2024-26308 and of the legitimate pack200 corpus: the
// header of a segment with no class and no file (what pack200 writes for an
// empty JAR: every count 0, class version 49.0), and the same header with
// one count that the bytes after it cannot hold.
func pack200Samples(t testing.TB) map[string][]byte {
	t.Helper()
	// cp_Utf8, String … Imethod (7), ic_count, class minor, major, class_count
	empty := []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0}
	with := func(i int, v uint64) []uint64 {
		f := append([]uint64{}, empty...)
		f[i] = v
		return f
	}
	// File headers: archive size hi, lo, next count, modtime, file_count.
	files := append([]uint64{0, 64, 0, 1647221103, 1_000_000_000}, empty...)
	return map[string][]byte{
		// Exploit variants.
		"two billion UTF-8 constants":          pack200Header(false, 0, with(0, 2_000_000_000), "\x00\x00"),
		"a billion files in a small archive":   pack200Header(false, pack200FileHeaders, files, "\x00\x00"),
		"a billion classes, gzip-compressed":   pack200Header(true, 0, with(11, 1_000_000_000), "\x00\x00"),
		"band headers larger than the archive": pack200Header(false, pack200SpecialFormats, append([]uint64{1 << 30, 0}, empty...), "\x00\x00"),
		// The legitimate corpus.
		"the segment of an empty JAR":              pack200Header(false, 0, empty, ""),
		"the segment of an empty JAR, as .pack.gz": pack200Header(true, 0, empty, ""),
	}
}

// TestArchiveVariantsInCommonsCompress reads every tar and DUMP variant,
// and every legitimate tar and DUMP archive, with a vulnerable
// commons-compress (1.22 or 1.23, where both CVE-2023-42503 and
// CVE-2024-25710 are present; EVIDENT_COMMONS_COMPRESS_JAR, else Debian's
// /usr/share/java/commons-compress-1.22.jar) through
// testdata/commonscompress/ReadArchives.java: each legitimate archive reads
// whole, and each variant is still being read after three seconds (the
// loops never end). It skips, saying why, without java, javac or the jar.
// The Pack200 variants are not read: Pack200 is no archive format of the
// factory, and Debian's jar leaves the unpacker out.
func TestArchiveVariantsInCommonsCompress(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a JVM")
	}
	jar := os.Getenv("EVIDENT_COMMONS_COMPRESS_JAR")
	if jar == "" {
		jar = "/usr/share/java/commons-compress-1.22.jar"
	}
	if _, err := os.Stat(jar); err != nil {
		t.Skipf("no commons-compress jar (EVIDENT_COMMONS_COMPRESS_JAR): %v", err)
	}
	javac, err1 := exec.LookPath("javac")
	java, err2 := exec.LookPath("java")
	if err := errors.Join(err1, err2); err != nil {
		t.Skipf("no JDK: %v", err)
	}
	dir := t.TempDir()
	if out, err := exec.Command(javac, "-nowarn", "-d", dir, "-cp", jar, filepath.Join("testdata", "commonscompress", "ReadArchives.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	x, err := knowledge.DefaultExploits()
	if err != nil {
		t.Fatal(err)
	}
	legit, err := legitimateCorpus()
	if err != nil {
		t.Fatal(err)
	}
	write := func(samples []Sample) []string {
		var files []string
		for _, s := range samples {
			body, err := s.Body()
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_", "'", "").Replace(s.Name)+".bin")
			if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		return files
	}
	run := func(deadline time.Duration, files []string) map[string]string {
		args := append([]string{"-Xmx256m", "-cp", jar + string(os.PathListSeparator) + dir, "ReadArchives", fmt.Sprint(deadline.Milliseconds())}, files...)
		out, err := exec.Command(java, args...).Output()
		if err != nil {
			t.Fatalf("java: %v", err)
		}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f, result, _ := strings.Cut(line, "\t")
			got[filepath.Base(f)] = result
		}
		return got
	}
	var exploits, good []string
	for _, id := range []string{"CVE-2023-42503", "CVE-2024-25710"} {
		exploits = append(exploits, write(x.Lookup(id)[0].Variants)...)
	}
	good = append(write(legit["tar"]), write(legit["dump"])...)
	// The legitimate reads end on their own: the deadline only bounds a
	// broken library. The variants get three seconds to show they do not:
	// still reading then, or out of the JVM's 256 MiB heap (a loop that
	// allocates as it goes, as the nested DUMP directories do, may get
	// there first, and takes the other reads of the JVM with it).
	for f, result := range run(time.Minute, good) {
		if !strings.HasPrefix(result, "read ") || result == "read 0" {
			t.Errorf("legitimate %s: %s", f, result)
		}
	}
	for f, result := range run(3*time.Second, exploits) {
		if result != "running" && !strings.Contains(result, "java.lang.OutOfMemoryError") {
			t.Errorf("variant %s: %s, want still running or out of memory (a vulnerable commons-compress never ends it)", f, result)
		}
		t.Logf("%s: %s", f, result)
	}
}
