package findings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/evidentsec/evident/internal/osv"
)

// The pip-audit JSON report (pypa/pip-audit, pip_audit/_format/json.py),
// with the fields that findings use: a dependency is either audited (name,
// version, vulns) or skipped (name, skip_reason); aliases are there unless
// --aliases off.
type (
	pipAuditDependency struct {
		Name       string         `json:"name"`
		Version    string         `json:"version"`
		SkipReason string         `json:"skip_reason"`
		Vulns      []pipAuditVuln `json:"vulns"`
	}
	pipAuditVuln struct {
		ID          string   `json:"id"`
		FixVersions []string `json:"fix_versions"`
		Aliases     []string `json:"aliases"`
	}
)

// ParsePipAudit reads the report of pip-audit --format json (pip-audit 2.x:
// an object with dependencies and fixes). Every vulnerability of an
// audited dependency becomes a finding: its id (PYSEC-, GHSA-) with its
// aliases, the lowest of its fix versions above the installed one. pip-audit
// states no severity; evident takes it from its database.
//
// A dependency that pip-audit skipped (skip_reason: not on PyPI, could not
// be resolved) or that is malformed is reported as a *RecordError naming
// it ("dependencies[3] (evident-internal)") and skipped. An input that is
// not a pip-audit report wraps ErrWrongFormat; broken JSON ErrMalformed.
func ParsePipAudit(r io.Reader, name string) ([]Finding, []error) {
	doc, err := decodeDocument(r)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var deps []json.RawMessage
	if doc["dependencies"] == nil || doc["fixes"] == nil {
		err = fmt.Errorf("not a pip-audit JSON report (no dependencies and fixes): %w", ErrWrongFormat)
	} else {
		_, err = field(doc, "dependencies", &deps)
	}
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		found []Finding
		errs  []error
	)
	for i, raw := range deps {
		rec := fmt.Sprintf("dependencies[%d]", i)
		var d pipAuditDependency
		if err := json.Unmarshal(raw, &d); err != nil {
			errs = append(errs, recordErr(name, rec, "%v", err))
			continue
		}
		if d.Name != "" {
			rec += " (" + d.Name + ")"
		}
		fs, err := pipAuditToFindings(d, name)
		if err != nil {
			errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
			continue
		}
		found = append(found, fs...)
	}
	return Merge(found), errs
}

func pipAuditToFindings(d pipAuditDependency, name string) ([]Finding, error) {
	if d.SkipReason != "" {
		return nil, fmt.Errorf("not audited by pip-audit: %s", d.SkipReason)
	}
	if d.Name == "" {
		return nil, errors.New("no name")
	}
	pkg, err := newPackage(osv.EcosystemPyPI, d.Name, d.Version, "")
	if err != nil {
		return nil, err
	}
	out := make([]Finding, 0, len(d.Vulns))
	for i, v := range d.Vulns {
		if v.ID == "" {
			return nil, fmt.Errorf("vulns[%d]: no id", i)
		}
		out = append(out, Finding{
			Package:       pkg,
			Vulnerability: Vulnerability{ID: v.ID, Aliases: sortedSet(v.Aliases)},
			Severity:      Severity{Level: LevelUnknown},
			FixedVersion:  lowestFix(pkg.Ecosystem, pkg.Version, v.FixVersions),
			Sources:       []Source{{Tool: string(FormatPipAudit), File: name}},
		})
	}
	return out, nil
}
