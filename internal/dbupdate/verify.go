package dbupdate

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/evidentsec/evident/internal/vulndb"
)

// Sentinels for the ways a download can be wrong; errors from Update wrap
// them.
var (
	// ErrChecksum means the bytes received do not match the hash the
	// server announced in x-goog-hash.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrSize means fewer or more bytes arrived than the server announced.
	ErrSize = errors.New("size mismatch")
	// ErrArchive means a downloaded archive is not a zip of JSON records.
	ErrArchive = errors.New("not an OSV archive")
	// ErrKEV means a downloaded KEV feed is not a KEV catalog.
	ErrKEV = errors.New("not a KEV catalog")
	// ErrEPSS means a downloaded EPSS file is not FIRST's score file, has
	// malformed rows, or holds less than half the scores of the last
	// download (a truncated export).
	ErrEPSS = errors.New("not a valid EPSS score file")
	// ErrNotFound means the server has no such file (HTTP 404 or 410); for
	// an ecosystem, usually a misspelt name.
	ErrNotFound = errors.New("not found")
	// ErrStatus means the server answered with an unexpected HTTP status.
	ErrStatus = errors.New("unexpected HTTP status")
	// ErrHostNotFound means the server's name does not resolve (DNS
	// NXDOMAIN): offline, or a misspelt URL. It is not retried.
	ErrHostNotFound = errors.New("host not found")
	// ErrRefused means nothing accepts connections at the server's
	// address. It is not retried.
	ErrRefused = errors.New("connection refused")
	// ErrTLS means the TLS handshake failed: a certificate that does not
	// verify, or a server that does not speak TLS. It is not retried.
	ErrTLS = errors.New("TLS handshake failed")
	// ErrRedirect means the server's redirects were refused: more than
	// ten, or one to a file:// URL. It is not retried.
	ErrRedirect = errors.New("redirect refused")
	// ErrTimeout means the server did not answer in time, or the file's
	// update ran past Config.Timeout.
	ErrTimeout = errors.New("timed out")
	// ErrStale means the server's file is older (Last-Modified) than the
	// one held, which is kept.
	ErrStale = errors.New("older than the file held")
)

// verifyArchive checks that r is a zip archive whose every file is a JSON
// object named *.json, as in osv.dev's all.zip, and returns the number of
// records. Reading each entry to the end makes archive/zip check its
// CRC-32, which catches corruption the server did not announce a hash for.
// The records themselves are parsed by vulndb, which reports bad ones one
// by one.
func verifyArchive(r io.ReaderAt, size int64) (records int, err error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrArchive, err)
	}
	br := bufio.NewReader(nil)
	for i, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		if !strings.HasSuffix(f.Name, ".json") {
			return records, fmt.Errorf("%w: entry %d %q: name does not end in .json", ErrArchive, i, f.Name)
		}
		// The loader skips a larger record (and archive/zip checks the
		// size the header states against what the entry inflates to).
		if f.UncompressedSize64 > vulndb.MaxRecordSize {
			return records, fmt.Errorf("%w: entry %d %q: %d bytes, over the %d a record may take", ErrArchive, i, f.Name, f.UncompressedSize64, vulndb.MaxRecordSize)
		}
		if err := checkJSONEntry(f, br); err != nil {
			return records, fmt.Errorf("%w: entry %d %q: %w", ErrArchive, i, f.Name, err)
		}
		records++
	}
	return records, nil
}

// checkJSONEntry reads f to the end, checking that it starts like a JSON
// object: enough to tell OSV records from HTML error pages and binaries
// without parsing them twice.
func checkJSONEntry(f *zip.File, br *bufio.Reader) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	br.Reset(rc)
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return errors.New("empty file")
		}
		if err != nil {
			return err
		}
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
			continue
		}
		if b != '{' {
			return fmt.Errorf("starts with %q, not a JSON object", b)
		}
		break
	}
	_, err = io.Copy(io.Discard, br)
	return err
}

// verifyKEV reads the catalog r as the loader does (vulndb.ParseKEV) and
// returns the number of vulnerabilities in it: a catalog the loader would
// refuse, or whose entries it would skip, or that holds less than half
// the prev of the one it would replace, or none, does not replace the one
// that works.
func verifyKEV(r io.Reader, name string, prev int) (int, error) {
	c, skipped, err := vulndb.ParseKEV(r, name)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrKEV, err)
	}
	if len(skipped) > 0 {
		return 0, fmt.Errorf("%w: %d of its entries would not be read: %v", ErrKEV, len(skipped), skipped[0])
	}
	n := len(c.Vulnerabilities)
	if err := enough(n, prev, "vulnerabilities", "catalog"); err != nil {
		return n, fmt.Errorf("%w: %w", ErrKEV, err)
	}
	return n, nil
}

// enough refuses a file of n entries that replaces one of prev: none, or
// under half as many (a broken export, a mirror caught mid-sync, not the
// database shrinking).
func enough(n, prev int, entries, file string) error {
	switch {
	case n == 0:
		return fmt.Errorf("no %s in it", entries)
	case n < prev/2:
		return fmt.Errorf("%d %s, under half the %d of the %s it would replace", n, entries, prev, file)
	}
	return nil
}

// googHash holds the hashes Google Cloud Storage announces for an object.
type googHash struct {
	md5    []byte // nil when not announced (composite objects have none)
	crc32c []byte // 4 bytes, big-endian, when announced
}

// parseGoogHash reads x-goog-hash header values. GCS sends either one
// header per hash or one comma-separated header:
// "crc32c=n03x6A==,md5=Ojk9c3dhfxgoKVVHYwFbHQ==". Unknown hash types are
// skipped, so that a new one does not break downloads.
func parseGoogHash(values []string) (googHash, error) {
	var h googHash
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, enc, ok := strings.Cut(part, "=")
			if !ok {
				return googHash{}, fmt.Errorf("x-goog-hash %q: no '='", part)
			}
			want := 0
			switch name {
			case "md5":
				want = 16
			case "crc32c":
				want = 4
			default:
				continue
			}
			sum, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				return googHash{}, fmt.Errorf("x-goog-hash %s: %w", name, err)
			}
			if len(sum) != want {
				return googHash{}, fmt.Errorf("x-goog-hash %s: %d bytes, want %d", name, len(sum), want)
			}
			if name == "md5" {
				h.md5 = sum
			} else {
				h.crc32c = sum
			}
		}
	}
	return h, nil
}

// parseEcosystems reads osv.dev's ecosystems.txt: one ecosystem directory
// per line. Names this package cannot store are returned in bad, so that
// one odd line does not stop the others.
func parseEcosystems(data []byte) (ecosystems []string, bad []error) {
	seen := make(map[string]bool)
	for i, line := range bytes.Split(data, []byte("\n")) {
		eco := strings.TrimSpace(string(line))
		if eco == "" || seen[eco] {
			continue
		}
		seen[eco] = true
		if err := checkEcosystem(eco); err != nil {
			bad = append(bad, fmt.Errorf("ecosystems.txt line %d %q: %w", i+1, eco, err))
			continue
		}
		ecosystems = append(ecosystems, eco)
	}
	return ecosystems, bad
}

// verifyEPSS parses an EPSS file whole (gunzipping it checks its CRC-32)
// and returns its number of scores. Every row must parse: the file is
// generated, so a bad row means a damaged one. prev is the number of
// scores of the file it would replace, 0 when none: FIRST scores every
// published CVE, so a file with less than half of them is cut short.
func verifyEPSS(r io.Reader, prev int) (int, error) {
	e, problems, err := vulndb.ParseEPSS(r, "epss.csv.gz")
	if err != nil {
		// vulndb's message says what is wrong; ErrEPSS files it here.
		return 0, &kindError{ErrEPSS, err}
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("%w: %d malformed rows, the first: %v", ErrEPSS, len(problems), problems[0])
	}
	if n := len(e.Scores); n < prev/2 {
		return 0, fmt.Errorf("%w: %d scores, the last download had %d", ErrEPSS, n, prev)
	}
	return len(e.Scores), nil
}
