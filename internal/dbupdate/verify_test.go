package dbupdate

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
)

func TestVerifyArchive(t *testing.T) {
	tests := []struct {
		name        string
		archive     []byte
		wantRecords int
		wantErr     string // empty: no error
	}{
		{name: "real records", archive: osvArchive(t), wantRecords: 2},
		{name: "empty archive", archive: makeZip(t, nil), wantRecords: 0},
		{name: "directory entries are skipped", archive: makeZip(t, map[string][]byte{"Go/": nil, "Go/GO-1.json": []byte(" \n{}")}), wantRecords: 1},
		{name: "not a zip", archive: []byte("PK but not really"), wantErr: "not an OSV archive: zip: not a valid zip file"},
		{name: "empty file", archive: nil, wantErr: "not an OSV archive: zip: not a valid zip file"},
		{name: "wrong name", archive: makeZip(t, map[string][]byte{"GO-1.json": []byte("{}"), "GO-2.yaml": []byte("id: x")}), wantErr: `entry 1 "GO-2.yaml": name does not end in .json`},
		{name: "empty record", archive: makeZip(t, map[string][]byte{"GO-1.json": nil}), wantErr: `entry 0 "GO-1.json": empty file`},
		{name: "array, not an object", archive: makeZip(t, map[string][]byte{"GO-1.json": []byte("[1]")}), wantErr: `entry 0 "GO-1.json": starts with '[', not a JSON object`},
		{name: "corrupt entry", archive: corruptZip(t), wantErr: `entry 0 "GO-1.json": zip: checksum error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifyArchive(bytes.NewReader(tt.archive), int64(len(tt.archive)))
			if tt.wantErr == "" {
				if err != nil || got != tt.wantRecords {
					t.Errorf("verifyArchive = %d, %v; want %d, nil", got, err, tt.wantRecords)
				}
				return
			}
			if !errors.Is(err, ErrArchive) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("verifyArchive error = %v, want ErrArchive containing %q", err, tt.wantErr)
			}
		})
	}
}

// corruptZip returns a stored (uncompressed) archive with one byte of its
// record changed, so that only the CRC-32 tells.
func corruptZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "GO-1.json", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(`{"id":"GO-1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	i := bytes.Index(data, []byte(`"GO-1"}`))
	if i < 0 {
		t.Fatal("stored record not found in the archive")
	}
	data[i+1] = 'X'
	return data
}

func FuzzVerifyArchive(f *testing.F) {
	f.Add(osvArchive(f))
	f.Add(makeZip(f, map[string][]byte{"a.json": []byte("{}"), "b.txt": nil}))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := verifyArchive(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, ErrArchive) {
			t.Errorf("error %v is not ErrArchive", err)
		}
		if n < 0 {
			t.Errorf("%d records", n)
		}
	})
}

func TestVerifyKEV(t *testing.T) {
	tests := []struct {
		name    string
		feed    string
		prev    int
		want    int
		wantErr string
	}{
		{name: "real feed", feed: string(kevFeed(t)), want: 2},
		{name: "no count", feed: `{"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"}]}`, want: 1},
		// What the loader (vulndb.ParseKEV) would refuse or skip, and
		// what holds far less than the catalog it would replace, does
		// not replace it: every known-exploited mark would be lost.
		{name: "empty catalog", feed: `{"count":0,"vulnerabilities":[]}`, wantErr: "not a KEV catalog: no vulnerabilities in it"},
		{name: "under half the catalog before", feed: string(kevFeed(t)), prev: 6, wantErr: "2 vulnerabilities, under half the 6 of the catalog it would replace"},
		{name: "not JSON", feed: `<html>`, wantErr: "not a KEV catalog: KEV catalog feed: invalid KEV catalog: invalid character '<'"},
		{name: "other JSON", feed: `{"data":[]}`, wantErr: "no vulnerabilities array"},
		{name: "entry without CVE", feed: `{"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"},{"product":"x"}]}`, wantErr: "1 of its entries would not be read: feed: vulnerabilities[1]: missing cveID"},
		{name: "entry that is no CVE", feed: `{"vulnerabilities":[{"cveID":"<html>","dateAdded":"2021-12-10"}]}`, wantErr: `cveID "<html>" is not a CVE id`},
		{name: "entry without a date", feed: `{"vulnerabilities":[{"cveID":"CVE-2021-44228"}]}`, wantErr: `dateAdded "" is not a YYYY-MM-DD date`},
		{name: "count disagrees", feed: `{"count":3,"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"}]}`, wantErr: "count is 3 but 1 vulnerabilities are listed"},
		{name: "wrong type", feed: `{"vulnerabilities":{}}`, wantErr: "json: cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifyKEV(strings.NewReader(tt.feed), "feed", tt.prev)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("verifyKEV = %d, %v; want %d, nil", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrKEV) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("verifyKEV error = %v, want ErrKEV containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzVerifyKEV(f *testing.F) {
	f.Add(kevFeed(f))
	f.Add([]byte(`{"count":1,"vulnerabilities":[{"cveID":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := verifyKEV(bytes.NewReader(data), "fuzz", 0); err != nil && !errors.Is(err, ErrKEV) {
			t.Errorf("error %v is not ErrKEV", err)
		}
	})
}

func TestParseGoogHash(t *testing.T) {
	md5 := bytes.Repeat([]byte{0xab}, 16)
	crc := []byte{1, 2, 3, 4}
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		values  []string
		want    googHash
		wantErr string
	}{
		{name: "none", values: nil, want: googHash{}},
		{name: "one header", values: []string{"crc32c=" + b64(crc) + ",md5=" + b64(md5)}, want: googHash{md5: md5, crc32c: crc}},
		{name: "one header per hash", values: []string{"crc32c=" + b64(crc), "md5=" + b64(md5)}, want: googHash{md5: md5, crc32c: crc}},
		{name: "composite object: crc32c only", values: []string{"crc32c=" + b64(crc)}, want: googHash{crc32c: crc}},
		{name: "unknown hash skipped", values: []string{"sha512=abc, md5=" + b64(md5)}, want: googHash{md5: md5}},
		{name: "no equals", values: []string{"md5"}, wantErr: `x-goog-hash "md5": no '='`},
		{name: "bad base64", values: []string{"md5=!!"}, wantErr: "x-goog-hash md5: illegal base64"},
		{name: "short md5", values: []string{"md5=" + b64(crc)}, wantErr: "x-goog-hash md5: 4 bytes, want 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseGoogHash(tt.values)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseGoogHash error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want, cmp.AllowUnexported(googHash{})); diff != "" {
				t.Errorf("parseGoogHash (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzParseGoogHash(f *testing.F) {
	f.Add("crc32c=n03x6A==,md5=Ojk9c3dhfxgoKVVHYwFbHQ==")
	f.Add("md5=,crc32c")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := parseGoogHash([]string{v})
		if err != nil {
			return
		}
		if h.md5 != nil && len(h.md5) != 16 || h.crc32c != nil && len(h.crc32c) != 4 {
			t.Errorf("parseGoogHash(%q) = %+v: wrong lengths", v, h)
		}
	})
}

func TestParseEcosystems(t *testing.T) {
	got, bad := parseEcosystems([]byte("AlmaLinux\nGo\r\nRed Hat\ncrates.io\nGo\n\n../etc\nDebian:12\n"))
	if diff := cmp.Diff(got, []string{"AlmaLinux", "Go", "Red Hat", "crates.io"}); diff != "" {
		t.Errorf("ecosystems (-got +want):\n%s", diff)
	}
	var msgs []string
	for _, err := range bad {
		msgs = append(msgs, err.Error())
	}
	want := []string{
		`ecosystems.txt line 7 "../etc": contains one of / \ : * ? " < > |`,
		`ecosystems.txt line 8 "Debian:12": contains one of / \ : * ? " < > |`,
	}
	if diff := cmp.Diff(msgs, want); diff != "" {
		t.Errorf("bad lines (-got +want):\n%s", diff)
	}
}

func FuzzParseEcosystems(f *testing.F) {
	f.Add([]byte("Go\nnpm\nPyPI\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _ := parseEcosystems(data)
		for _, eco := range got {
			if err := checkEcosystem(eco); err != nil {
				t.Errorf("accepted %q: %v", eco, err)
			}
		}
	})
}

func BenchmarkVerifyArchive(b *testing.B) {
	data := realSnapshot(b)
	b.SetBytes(int64(len(data)))
	var records int
	for b.Loop() {
		n, err := verifyArchive(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		records += n
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// TestVerifyArchiveFile: an archive with no record, far fewer than the one
// it would replace, or a record larger than the loader reads, does not
// replace a good one: serve and analyze would refuse the database, or an
// ecosystem's vulnerabilities would vanish, after an update that said it
// succeeded.
func TestVerifyArchiveFile(t *testing.T) {
	four := makeZip(t, map[string][]byte{"a.json": []byte(`{"id":"A"}`), "b.json": []byte(`{"id":"B"}`), "c.json": []byte(`{"id":"C"}`), "d.json": []byte(`{"id":"D"}`)})
	one := makeZip(t, map[string][]byte{"a.json": []byte(`{"id":"A"}`)})
	empty := makeZip(t, map[string][]byte{})
	var big bytes.Buffer
	zw := zip.NewWriter(&big)
	w, err := zw.Create("big.json")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("{"))
	w.Write(make([]byte, vulndb.MaxRecordSize))
	zw.Close()
	for _, tt := range []struct {
		name    string
		archive []byte
		prev    int
		want    int
		wantErr string
	}{
		{"first download", one, 0, 1, ""},
		{"as many as before", four, 4, 4, ""},
		{"half as many", makeZip(t, map[string][]byte{"a.json": []byte(`{"id":"A"}`), "b.json": []byte(`{"id":"B"}`)}), 4, 2, ""},
		{"fewer than half", one, 4, 0, "1 records, under half the 4 of the archive it would replace"},
		{"empty", empty, 0, 0, "not an OSV archive: no records in it"},
		{"a record over the loader's bound", big.Bytes(), 0, 0, `entry 0 "big.json": 33554433 bytes, over the 33554432 a record may take`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.CreateTemp(t.TempDir(), "all.zip")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(tt.archive); err != nil {
				t.Fatal(err)
			}
			got, err := verifyArchiveFile(f, int64(len(tt.archive)), tt.prev)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("verifyArchiveFile = %d, %v; want %d", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrArchive) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("verifyArchiveFile = %d, %v; want ErrArchive saying %q", got, err, tt.wantErr)
			}
		})
	}
}
