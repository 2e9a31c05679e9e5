package waf

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
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

// TestArchiveSamplesBuiltByArchiveTar: every base64 body the exploit
// knowledge and the legitimate tar corpus ship is the archive that
// archive/tar writes for it (a mismatch prints the base64 to ship); Go's
// own reader reads each legitimate one whole; the inspector and the
// SecLang approximation count each variant's bad records, and none in a
// legitimate archive.
func TestArchiveSamplesBuiltByArchiveTar(t *testing.T) {
	built := archiveSamples(t)
	x, err := knowledge.DefaultExploits()
	if err != nil {
		t.Fatal(err)
	}
	es := x.Lookup("CVE-2023-42503")
	if len(es) != 1 {
		t.Fatalf("%d entries for CVE-2023-42503", len(es))
	}
	legit, err := legitimateCorpus()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := checkDetections(knowledge.Check{Kind: "tar_pax_time"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rx := regexp.MustCompile(strings.TrimPrefix(ds[0].links[0].op, "@rx "))
	seen := 0
	for _, set := range []struct {
		exploit bool
		samples []Sample
	}{{true, es[0].Variants}, {false, legit["tar"]}} {
		for _, s := range set.samples {
			want, ok := built[s.Name]
			if !ok {
				t.Errorf("%q: no archive built for it", s.Name)
				continue
			}
			seen++
			body, err := s.Body()
			if err != nil {
				t.Fatal(err)
			}
			if body != string(want) {
				t.Errorf("%q: the shipped payload is not the archive archive/tar writes; ship\n%s", s.Name, base64.StdEncoding.EncodeToString(want))
			}
			bad := tarBadPaxTimes(string(want))
			compressed := bytes.HasPrefix(want, []byte("\x1f\x8b"))
			switch {
			case set.exploit && bad == 0:
				t.Errorf("%q: the inspector finds no bad PAX time", s.Name)
			case !set.exploit && bad != 0:
				t.Errorf("legitimate %q: the inspector finds %d bad PAX times", s.Name, bad)
			case set.exploit && !compressed && !rx.Match(want):
				t.Errorf("%q: the SecLang expression misses it", s.Name)
			case !set.exploit && rx.Match(want):
				t.Errorf("legitimate %q: the SecLang expression matches it", s.Name)
			}
			if !set.exploit {
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
	if seen != len(built) {
		t.Errorf("%d of the %d built archives are shipped", seen, len(built))
	}
}
