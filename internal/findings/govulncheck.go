package findings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
)

// The govulncheck JSON protocol (golang.org/x/vuln internal/govulncheck,
// protocol v1.0.0), mirrored because its structs are internal. The stream
// is a sequence of messages, each with exactly one field set.
type (
	govulncheckMessage struct {
		Config   json.RawMessage `json:"config"`
		Progress json.RawMessage `json:"progress"`
		SBOM     json.RawMessage `json:"SBOM"`
		OSV      json.RawMessage `json:"osv"`
		Finding  json.RawMessage `json:"finding"`
	}
	govulncheckSBOM struct {
		Roots []string `json:"roots"`
	}
	govulncheckConfig struct {
		ProtocolVersion string `json:"protocol_version"`
		ScanLevel       string `json:"scan_level"`
	}
	govulncheckFinding struct {
		OSV          string             `json:"osv"`
		FixedVersion string             `json:"fixed_version"`
		Trace        []govulncheckFrame `json:"trace"`
	}
	// govulncheckFrame is one frame of a finding's trace; the first frame
	// is the vulnerable symbol (or package, or module), the last the
	// entry point.
	govulncheckFrame struct {
		Module   string `json:"module"`
		Version  string `json:"version"`
		Package  string `json:"package"`
		Function string `json:"function"`
		Receiver string `json:"receiver"`
	}
)

// ParseGovulncheck reads the JSON stream of govulncheck -format json (or
// the legacy -json) at any scan level. The SBOM message's roots, the
// packages scanned, give the sources' Artifact. Each finding message becomes a
// finding of its first frame's module: Static is called when the frame
// names a function (the symbol, "pkgpath.Recv.Method", goes to Symbols),
// imported when it names only a package, required when only a module.
// In binary mode (-mode binary) a symbol found in the executable counts as
// called: the linker keeps only the functions that are reachable.
// The osv messages, wherever they are in the stream, give the aliases and
// severity. The findings of one vulnerability at several levels are
// merged.
//
// A malformed message is reported as a *RecordError naming its position
// in the stream ("message 7") and skipped; broken JSON stops the stream
// with an error wrapping ErrMalformed, keeping what came before it. An
// input whose first message is not a govulncheck message is one error
// wrapping ErrWrongFormat.
func ParseGovulncheck(r io.Reader, name string) ([]Finding, []error) {
	dec := json.NewDecoder(r)
	var (
		errs  []error
		found []Finding
		vulns = map[string]*osv.Entry{}
		level string
		roots []string
	)
	for n := 1; ; n++ {
		rec := fmt.Sprintf("message %d", n)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				if n == 1 {
					return nil, []error{fmt.Errorf("%s: empty govulncheck stream: %w", name, ErrWrongFormat)}
				}
				break
			}
			if n == 1 {
				return nil, []error{fmt.Errorf("%s: not a govulncheck JSON stream: %v: %w", name, err, ErrWrongFormat)}
			}
			errs = append(errs, fmt.Errorf("%s: %s: %s (the rest of the stream is lost): %w", name, rec, jsonError(err), ErrMalformed))
			break
		}
		var msg govulncheckMessage
		if err := json.Unmarshal(raw, &msg); err != nil || countSet(msg) != 1 {
			if n == 1 {
				return nil, []error{fmt.Errorf("%s: not a govulncheck JSON stream (the first value is not a message with one of the fields %s): %w",
					name, strings.Join(govulncheckKeys, ", "), ErrWrongFormat)}
			}
			if err != nil {
				errs = append(errs, recordErr(name, rec, "%v", err))
			} else {
				errs = append(errs, recordErr(name, rec, "a message must have exactly one of the fields %s", strings.Join(govulncheckKeys, ", ")))
			}
			continue
		}
		switch {
		case msg.Config != nil:
			var c govulncheckConfig
			if err := json.Unmarshal(msg.Config, &c); err != nil {
				errs = append(errs, recordErr(name, rec+" (config)", "%v", err))
				continue
			}
			if !strings.HasPrefix(c.ProtocolVersion, "v1.") {
				return nil, []error{fmt.Errorf("%s: govulncheck protocol version %q, want v1.x: %w", name, c.ProtocolVersion, ErrWrongFormat)}
			}
			level = c.ScanLevel
		case msg.SBOM != nil:
			var sbom govulncheckSBOM
			if err := json.Unmarshal(msg.SBOM, &sbom); err != nil {
				errs = append(errs, recordErr(name, rec+" (SBOM)", "%v", err))
				continue
			}
			roots = sbom.Roots
		case msg.OSV != nil:
			var e osv.Entry
			if err := json.Unmarshal(msg.OSV, &e); err != nil {
				errs = append(errs, recordErr(name, rec+" (osv)", "%v", err))
				continue
			}
			if e.ID == "" {
				errs = append(errs, recordErr(name, rec+" (osv)", "no id"))
				continue
			}
			vulns[e.ID] = &e
		case msg.Finding != nil:
			var f govulncheckFinding
			if err := json.Unmarshal(msg.Finding, &f); err != nil {
				errs = append(errs, recordErr(name, rec+" (finding)", "%v", err))
				continue
			}
			ff, err := govulncheckToFinding(f, level, name)
			if err != nil {
				rec += " (finding)"
				if f.OSV != "" {
					rec = fmt.Sprintf("message %d (finding %s)", n, f.OSV)
				}
				errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
				continue
			}
			found = append(found, ff)
		}
	}
	// The osv messages may come anywhere in the stream; attach them now.
	for i := range found {
		f := &found[i]
		e, ok := vulns[f.Vulnerability.ID]
		if !ok {
			continue
		}
		f.Vulnerability.Aliases = slices.Clone(e.Aliases)
		sevs := [][]osv.Severity{e.Severity}
		for _, a := range e.Affected {
			sevs = append(sevs, a.Severity)
		}
		f.Severity = osvSeverity(sevs...)
	}
	return Merge(withArtifact(found, commonPath(roots))), errs
}

// commonPath is the longest leading path that all paths share, element
// by element: the root packages of a scan of ./... share their module.
func commonPath(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	common := strings.Split(paths[0], "/")
	for _, p := range paths[1:] {
		elems := strings.Split(p, "/")
		n := 0
		for n < len(common) && n < len(elems) && common[n] == elems[n] {
			n++
		}
		common = common[:n]
	}
	return strings.Join(common, "/")
}

// countSet is the number of fields set in a message.
func countSet(m govulncheckMessage) int {
	n := 0
	for _, f := range []json.RawMessage{m.Config, m.Progress, m.SBOM, m.OSV, m.Finding} {
		if f != nil {
			n++
		}
	}
	return n
}

// govulncheckToFinding converts a finding message; the config message,
// which comes first, gave the scan level.
func govulncheckToFinding(gf govulncheckFinding, level, name string) (Finding, error) {
	if gf.OSV == "" {
		return Finding{}, errors.New("no osv id")
	}
	if len(gf.Trace) == 0 {
		return Finding{}, errors.New("empty trace")
	}
	top := gf.Trace[0]
	if top.Module == "" {
		return Finding{}, errors.New("trace[0]: no module")
	}
	pkg, err := newPackage(osv.EcosystemGo, top.Module, top.Version, "")
	if err != nil {
		return Finding{}, fmt.Errorf("trace[0]: %w", err)
	}
	f := Finding{
		Package:       pkg,
		Vulnerability: Vulnerability{ID: gf.OSV},
		Severity:      Severity{Level: LevelUnknown},
		FixedVersion:  gf.FixedVersion,
		Static:        StaticRequired,
		Sources:       []Source{{Tool: string(FormatGovulncheck), File: name}},
	}
	switch {
	case top.Function != "":
		if top.Package == "" {
			return Finding{}, fmt.Errorf("trace[0]: function %s without a package", top.Function)
		}
		f.Static = StaticCalled
		f.Symbols = []string{goSymbol(top)}
	case top.Package != "":
		f.Static = StaticImported
	}
	// A module-level scan cannot say more than "required", whatever the
	// frame holds; a package-level scan no more than "imported".
	switch level {
	case "module":
		f.Static, f.Symbols = StaticRequired, nil
	case "package":
		if f.Static == StaticCalled {
			f.Static, f.Symbols = StaticImported, nil
		}
	}
	return f, nil
}

// goSymbol names the function of a frame as "pkgpath.Func" or
// "pkgpath.Recv.Method": the receiver loses its pointer and type
// parameters, as symbols in the Go vulnerability database do.
func goSymbol(fr govulncheckFrame) string {
	recv := strings.TrimPrefix(fr.Receiver, "*")
	if i := strings.IndexByte(recv, '['); i >= 0 {
		recv = recv[:i]
	}
	if recv == "" {
		return fr.Package + "." + fr.Function
	}
	return fr.Package + "." + recv + "." + fr.Function
}

// govulncheckRoots is the roots of a govulncheck stream's SBOM message,
// nil when it has none or is not a stream.
func govulncheckRoots(r io.Reader) []string {
	dec := json.NewDecoder(r)
	for {
		var msg govulncheckMessage
		if dec.Decode(&msg) != nil {
			return nil
		}
		var sbom govulncheckSBOM
		if msg.SBOM != nil && json.Unmarshal(msg.SBOM, &sbom) == nil {
			return sbom.Roots
		}
	}
}
