package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/encoding/protowire"
)

// Input is one telemetry path given by the user, with the service its
// files belong to ("" when the files or a directory layout say it).
type Input struct {
	Service string
	Path    string
}

// ParseInput parses "SERVICE=PATH" or a bare "PATH". The part before the
// first '=' is taken as a service only when it holds no path separator,
// so a path containing '=' can still be given bare.
func ParseInput(s string) (Input, error) {
	if s == "" {
		return Input{}, errors.New("parse telemetry input: empty")
	}
	svc, path, ok := strings.Cut(s, "=")
	if !ok || strings.ContainsAny(svc, `/\`) {
		return Input{Path: s}, nil
	}
	if svc == "" || path == "" {
		return Input{}, fmt.Errorf("parse telemetry input %q: want SERVICE=PATH with both parts", s)
	}
	return Input{Service: svc, Path: path}, nil
}

// Kind is the kind of telemetry a file holds.
type Kind uint8

// Kinds of telemetry files.
const (
	KindUnknown      Kind = iota
	KindPprof             // pprof profile, gzipped or raw
	KindOTLPProfiles      // OTLP ExportProfilesServiceRequest, protobuf or JSON
	KindTraces            // OTLP traces (protobuf, JSON, JSON lines) or Tempo JSON
	KindJFR               // JFR recording, gzipped or raw
	KindFolded            // folded (collapsed) stacks, by the file's extension
)

// String returns a short name of the kind.
func (k Kind) String() string {
	switch k {
	case KindPprof:
		return "pprof"
	case KindOTLPProfiles:
		return "otlp-profiles"
	case KindTraces:
		return "traces"
	case KindJFR:
		return "jfr"
	case KindFolded:
		return "folded"
	default:
		return "unknown"
	}
}

// File is one telemetry file to decode.
type File struct {
	Service string
	Path    string
	Kind    Kind
	// named says that the input named Service, rather than a
	// subdirectory's name giving it.
	named bool
}

// telemetryExts are the names of the files Discover reads in a directory.
var telemetryExts = [...]string{".pb", ".binpb", ".pprof", ".prof", ".json", ".jsonl", ".gz", ".zst", ".jfr", ".folded", ".collapsed", ".austin"}

// hasTelemetryExt reports whether Discover picks up a file of this name
// inside a directory; other files there (READMEs, checksums) are skipped.
// A file named directly is read whatever its name.
func hasTelemetryExt(name string) bool {
	for _, ext := range telemetryExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// Discover lists the telemetry files of the inputs and recognises the
// kind of each by its content. In a directory given without a service,
// files under a first-level subdirectory belong to the service named by
// that subdirectory (dir/checkout/cpu.pb.gz → "checkout"); files directly
// in it have no service. Hidden files and directories are skipped.
//
// A file that cannot be read or recognised is reported in the returned
// error and left out; the other files are returned. A file that several
// inputs list (a directory and a file in it) is returned once: read
// twice, its spans and samples would count twice. It keeps the service
// its first input gives it, unless a later input names one for it and the
// first did not (a service name from a subdirectory, or none); two
// inputs naming different services for it are an error.
func Discover(inputs []Input) ([]File, error) {
	files, errs := discover(inputs)
	return dedupFiles(files, errs)
}

// dedupFiles drops the files of files listed before, by absolute path,
// with the services as Discover says.
func dedupFiles(files []File, errs []error) ([]File, error) {
	at := map[string]int{}
	out := files[:0]
	for _, f := range files {
		abs, err := filepath.Abs(f.Path)
		if err != nil {
			abs = filepath.Clean(f.Path)
		}
		i, seen := at[abs]
		switch {
		case !seen:
			at[abs] = len(out)
			out = append(out, f)
		case f.named && !out[i].named:
			out[i].Service, out[i].named = f.Service, true
		case f.named && f.Service != out[i].Service:
			errs = append(errs, fmt.Errorf("discover telemetry: %s is given for service %q and for %q: read as %q's", f.Path, out[i].Service, f.Service, out[i].Service))
		}
	}
	return out, errors.Join(errs...)
}

// discover lists and recognises the files of inputs, as Discover, with
// every listing of a file.
func discover(inputs []Input) ([]File, []error) {
	var files []File
	var errs []error
	for _, in := range inputs {
		info, err := os.Stat(in.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("discover telemetry: %w", err))
			continue
		}
		if !info.IsDir() {
			kind, err := sniffFile(in.Path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			files = append(files, File{Service: in.Service, Path: in.Path, Kind: kind, named: in.Service != ""})
			continue
		}
		found, failed := len(files), len(errs)
		err = filepath.WalkDir(in.Path, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, fmt.Errorf("discover telemetry: %w", err))
				return nil
			}
			if path != in.Path && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !hasTelemetryExt(d.Name()) {
				return nil
			}
			kind, err := sniffFile(path)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			svc := in.Service
			if svc == "" {
				rel, _ := filepath.Rel(in.Path, path)
				if dir, _, ok := strings.Cut(filepath.ToSlash(rel), "/"); ok {
					svc = dir
				}
			}
			files = append(files, File{Service: svc, Path: path, Kind: kind, named: in.Service != ""})
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("discover telemetry in %s: %w", in.Path, err))
		}
		if len(files) == found && len(errs) == failed {
			// A wrong path must not pass for a service whose code never ran.
			errs = append(errs, fmt.Errorf("discover telemetry: %s: the directory holds no telemetry files (%s)", in.Path, strings.Join(telemetryExts[:], ", ")))
		}
	}
	return files, errs
}

// sniffLen is how much of a file (after gunzipping) sniffing reads.
const sniffLen = 64 << 10

// sniffFile recognises the kind of a file from its first bytes.
func sniffFile(path string) (Kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return KindUnknown, fmt.Errorf("discover telemetry: %w", err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head[:2])
	if err != nil {
		return KindUnknown, fmt.Errorf("discover telemetry: %s: %w: file is empty or too short", path, ErrUnknownFormat)
	}
	switch {
	case string(head[:2]) == gzipMagic:
		zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(head[:2]), r))
		if err != nil {
			return KindUnknown, fmt.Errorf("discover telemetry: %s: gzip: %w: %w", path, ErrMalformed, err)
		}
		r, n = CutShortReader(zr, "gzip"), 0
	case string(head[:2]) == zstdMagic[:2]:
		zr, err := zstd.NewReader(io.MultiReader(bytes.NewReader(head[:2]), r), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return KindUnknown, fmt.Errorf("discover telemetry: %s: zstd: %w: %w", path, ErrMalformed, err)
		}
		defer zr.Close()
		r, n = CutShortReader(zr, "zstd"), 0
	}
	m, err := io.ReadFull(r, head[n:])
	// A compressed file cut short is told by what it holds, if that is
	// enough; if not, the cut is why.
	var cut *cutShortError
	if err != nil && !errors.As(err, &cut) && err != io.ErrUnexpectedEOF && err != io.EOF {
		return KindUnknown, fmt.Errorf("discover telemetry: %s: %w: %w", path, ErrMalformed, err)
	}
	kind := sniff(head[:n+m])
	if kind != KindJFR && isFoldedName(path) {
		// Text that may happen to parse as protobuf fields.
		kind = KindFolded
	}
	if kind == KindUnknown && cut != nil {
		return kind, fmt.Errorf("discover telemetry: %s: %w: %w", path, ErrMalformed, cut)
	}
	if kind == KindUnknown {
		return kind, fmt.Errorf("discover telemetry: %s: %w: neither pprof, JFR, OTLP profiles, OTLP traces, Tempo JSON nor folded stacks (.folded, .collapsed, .austin)", path, ErrUnknownFormat)
	}
	return kind, nil
}

// isFoldedName reports whether a file is named as folded stacks are
// ("cpu.folded", "out.collapsed.gz", austin's "app.austin"): only
// austin's have a header to tell them by.
func isFoldedName(path string) bool {
	name := strings.TrimSuffix(strings.TrimSuffix(path, ".gz"), ".txt")
	return strings.HasSuffix(name, ".folded") || strings.HasSuffix(name, ".collapsed") || strings.HasSuffix(name, ".austin")
}

// sniff recognises the kind of (the start of) a decompressed file.
func sniff(head []byte) Kind {
	if hasPrefix(head, jfrMagic) {
		return KindJFR
	}
	if hasPrefix(head, austinMagic) {
		return KindFolded
	}
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		switch topKey(t) {
		case "resourceProfiles", "dictionary":
			return KindOTLPProfiles
		case "resourceSpans", "batches", "trace":
			return KindTraces
		}
		return KindUnknown
	}
	if len(head) >= 4 && head[0] == 0 {
		// The Collector file exporter's length-prefixed requests; a
		// zstd-compressed one is taken for traces, the only signal read
		// from such files.
		msg := head[4:min(len(head), 4+int(binary.BigEndian.Uint32(head)))]
		if hasPrefix(msg, zstdMagic) {
			return KindTraces
		}
		return sniff(msg)
	}
	return sniffProto(head)
}

// sniffProto tells the protobuf messages apart by their first fields.
// pprof's Profile starts with sample_type (a ValueType of varints) and has
// fields up to 15; the OTLP requests hold only resource_* (1) and, for
// profiles, the dictionary (2). Traces and profiles differ two levels
// down: a span has a 16-byte trace_id as field 1, a profile its
// sample_type, a ValueType of a few bytes. (Encoders may write fields in
// any order; pdata writes them last to first.) head may end in the middle
// of a field at any level: a request's first resource_spans alone is
// often longer than the head, and a truncated file ends anywhere. A field
// cut short is read as far as it goes.
func sniffProto(head []byte) Kind {
	var first []byte
	var cut bool // first was cut short
	nums := map[protowire.Number]bool{}
	for off := 0; off < len(head); {
		num, typ, p, n, truncated, err := readFieldTruncated(head[off:])
		if err != nil {
			break
		}
		nums[num] = true
		if num == 1 && first == nil {
			if typ != protowire.BytesType {
				return KindUnknown
			}
			first, cut = p, truncated
		}
		off += n
	}
	for num := range nums {
		if num > 2 {
			return KindPprof
		}
	}
	if first == nil {
		if nums[2] {
			return KindOTLPProfiles
		}
		return KindUnknown
	}
	if _, typ, _, _, _, err := readField(first); err == nil && typ == protowire.VarintType {
		return KindPprof
	}
	if nums[2] {
		return KindOTLPProfiles
	}
	// resource_* → scope_* (2) → spans/profiles (2) → first field. No
	// spans or profiles to tell by, or a first one cut before its field 1,
	// is taken for traces, which are far more common.
	inner := first
	for range 2 {
		var truncated bool
		if inner, truncated = firstMessage(inner, 2); inner == nil {
			return KindTraces
		}
		cut = cut || truncated
	}
	if id, _ := firstMessage(inner, 1); len(id) == 16 || id == nil && cut {
		return KindTraces
	}
	return KindOTLPProfiles
}

// firstMessage returns the bytes of msg's first length-delimited field
// numbered num, as far as msg holds them (truncated then set), or nil.
func firstMessage(msg []byte, num protowire.Number) (p []byte, truncated bool) {
	for off := 0; off < len(msg); {
		fnum, typ, p, n, truncated, err := readFieldTruncated(msg[off:])
		if err != nil {
			return nil, false
		}
		if fnum == num && typ == protowire.BytesType {
			return p, truncated
		}
		off += n
	}
	return nil, false
}

// Handler receives what Load decodes. Load calls it from one goroutine;
// the handler owns the batches and slices it is given. An error from it
// stops Load.
type Handler interface {
	Profile(*ProfileBatch) error
	Spans([]Span) error
}

// handlerError marks an error returned by the Handler, which stops Load,
// from errors about the input, which do not.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

// Load decodes the files in order and hands their contents to h.
//
// Service assignment: a pprof profile takes the file's service when it has
// one (the user or the directory named it), else its service_name label;
// OTLP data names its services in resource attributes, and the file's
// service only fills in where those are missing.
//
// A file that cannot be decoded, and the malformed records of a file, are
// reported in the returned error while the rest is still loaded. An error
// from h or the context stops Load at once and is returned.
func Load(ctx context.Context, files []File, h Handler) error {
	var errs []error
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := loadFile(f, h)
		var he handlerError
		if errors.As(err, &he) {
			return he.err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func loadFile(f File, h Handler) error {
	switch f.Kind {
	case KindPprof, KindOTLPProfiles:
		data, err := os.ReadFile(f.Path)
		if err != nil {
			return fmt.Errorf("load telemetry: %w", err)
		}
		var batches []*ProfileBatch
		var decodeErr error
		if f.Kind == KindPprof {
			batches, decodeErr = DecodePprof(data, f.Path)
		} else {
			batches, decodeErr = DecodeOTLPProfiles(data, f.Path)
		}
		for _, b := range batches {
			if f.Service != "" && (f.Kind == KindPprof || b.Service == "") {
				b.Service = f.Service
			}
			if err := h.Profile(b); err != nil {
				return handlerError{err}
			}
		}
		return decodeErr
	case KindJFR:
		r, err := os.Open(f.Path)
		if err != nil {
			return fmt.Errorf("load telemetry: %w", err)
		}
		defer r.Close()
		batches, err := Limits{}.DecodeJFRReader(r, f.Path)
		return handleProfiles(f.Service, batches, err, h)
	case KindFolded:
		data, err := os.ReadFile(f.Path)
		if err != nil {
			return fmt.Errorf("load telemetry: %w", err)
		}
		batches, err := DecodeFolded(data, f.Path, true)
		end := foldedEnd(f.Path, data)
		for _, b := range batches {
			b.Start = end.Add(-b.Duration)
		}
		return handleProfiles(f.Service, batches, err, h)
	case KindTraces:
		r, err := os.Open(f.Path)
		if err != nil {
			return fmt.Errorf("load telemetry: %w", err)
		}
		defer r.Close()
		var herr error
		err = DecodeTraces(r, f.Path, func(spans []Span) error {
			if f.Service != "" {
				for i := range spans {
					if spans[i].Service == UnknownService {
						spans[i].Service = f.Service
					}
				}
			}
			herr = h.Spans(spans)
			return herr
		})
		if herr != nil {
			return handlerError{herr}
		}
		return err
	default:
		return fmt.Errorf("load telemetry %s: %w: kind %s", f.Path, ErrUnknownFormat, f.Kind)
	}
}

// foldedEnd is when the folded stacks of a file end, as they carry no
// time: when the file was last written, which is as a profiler finishes
// it; for a gzipped file, the time gzip kept of the file it compressed
// (what gunzip -N restores), and the gzipped file's own when gzip kept
// none (-n, or compressing a pipe).
func foldedEnd(path string, data []byte) time.Time {
	if hasPrefix(data, gzipMagic) {
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil && zr.ModTime.Unix() > 0 {
			return zr.ModTime.UTC()
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return info.ModTime().UTC()
}

// handleProfiles hands the profiles of a file that names no service
// itself (JFR, folded stacks) to h under the file's service, and returns
// the decoding error.
func handleProfiles(service string, batches []*ProfileBatch, decodeErr error, h Handler) error {
	for _, b := range batches {
		b.Service = service
		if err := h.Profile(b); err != nil {
			return handlerError{err}
		}
	}
	return decodeErr
}
