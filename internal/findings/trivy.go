package findings

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/package-url/packageurl-go"

	"github.com/evidentsec/evident/internal/osv"
)

// The Trivy JSON report, SchemaVersion 2 (aquasecurity/trivy pkg/types),
// with the fields that findings use. Trivy's module cannot be imported
// (it is not served by the module proxy), so the structs are mirrored.
type (
	trivyResult struct {
		Type            string            `json:"Type"`
		Vulnerabilities []json.RawMessage `json:"Vulnerabilities"`
	}
	trivyVulnerability struct {
		VulnerabilityID string   `json:"VulnerabilityID"`
		VendorIDs       []string `json:"VendorIDs"`
		PkgName         string   `json:"PkgName"`
		PkgIdentifier   struct {
			PURL string `json:"PURL"`
		} `json:"PkgIdentifier"`
		InstalledVersion string               `json:"InstalledVersion"`
		FixedVersion     string               `json:"FixedVersion"`
		SeveritySource   string               `json:"SeveritySource"`
		Severity         string               `json:"Severity"`
		CVSS             map[string]trivyCVSS `json:"CVSS"`
	}
	trivyCVSS struct {
		V2Vector  string  `json:"V2Vector"`
		V3Vector  string  `json:"V3Vector"`
		V40Vector string  `json:"V40Vector"`
		V2Score   float64 `json:"V2Score"`
		V3Score   float64 `json:"V3Score"`
		V40Score  float64 `json:"V40Score"`
	}
)

// trivyTypes maps Trivy's language result types to OSV ecosystems, for
// vulnerabilities without a package URL (reports of Trivy before 0.49).
var trivyTypes = map[string]string{
	"gomod": osv.EcosystemGo, "gobinary": osv.EcosystemGo,
	"npm": osv.EcosystemNPM, "yarn": osv.EcosystemNPM, "pnpm": osv.EcosystemNPM, "bun": osv.EcosystemNPM, "node-pkg": osv.EcosystemNPM,
	"pip": osv.EcosystemPyPI, "pipenv": osv.EcosystemPyPI, "poetry": osv.EcosystemPyPI, "uv": osv.EcosystemPyPI, "python-pkg": osv.EcosystemPyPI,
	"jar": osv.EcosystemMaven, "pom": osv.EcosystemMaven, "gradle": osv.EcosystemMaven, "sbt": osv.EcosystemMaven,
	"cargo": osv.EcosystemCratesIO, "rustbinary": osv.EcosystemCratesIO,
	"composer": osv.EcosystemPackagist, "composer-vendor": osv.EcosystemPackagist,
	"bundler": osv.EcosystemRubyGems, "gemspec": osv.EcosystemRubyGems,
	"nuget": osv.EcosystemNuGet, "dotnet-core": osv.EcosystemNuGet, "packages-props": osv.EcosystemNuGet,
	"pub": osv.EcosystemPub, "hex": osv.EcosystemHex,
}

// trivyOSTypes maps Trivy's OS families to package URL types.
var trivyOSTypes = map[string]string{
	"debian": "deb", "ubuntu": "deb", "alpine": "apk", "wolfi": "apk", "chainguard": "apk",
	"redhat": "rpm", "centos": "rpm", "rocky": "rpm", "alma": "rpm", "amazon": "rpm", "oracle": "rpm", "photon": "rpm", "suse": "rpm", "opensuse": "rpm",
}

// ParseTrivy reads a Trivy JSON report (trivy image|fs|repo -f json,
// SchemaVersion 2). Every entry of Results[].Vulnerabilities becomes a
// finding; VendorIDs become aliases, Severity the level, and the CVSS of
// the SeveritySource the score. Misconfigurations, secrets and licenses
// are not vulnerabilities of packages and are ignored. ArtifactName, the
// image or directory scanned, is the sources' Artifact.
//
// A malformed result or vulnerability is reported as a *RecordError
// naming it ("Results[0].Vulnerabilities[3] (CVE-…)") and skipped. An
// input that is not a Trivy report, or is not valid JSON, is one error
// wrapping ErrWrongFormat or ErrMalformed.
func ParseTrivy(r io.Reader, name string) ([]Finding, []error) {
	doc, err := decodeDocument(r)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		schema  int
		results []json.RawMessage
	)
	ok, err := field(doc, "SchemaVersion", &schema)
	if err == nil && !ok {
		err = fmt.Errorf("not a Trivy JSON report (no SchemaVersion): %w", ErrWrongFormat)
	}
	if err == nil && schema != 2 {
		err = fmt.Errorf("report SchemaVersion %d, want 2: %w", schema, ErrWrongFormat)
	}
	if err == nil {
		_, err = field(doc, "Results", &results)
	}
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		found []Finding
		errs  []error
	)
	for i, raw := range results {
		rec := fmt.Sprintf("Results[%d]", i)
		var res trivyResult
		if err := json.Unmarshal(raw, &res); err != nil {
			errs = append(errs, recordErr(name, rec, "%v", err))
			continue
		}
		for j, raw := range res.Vulnerabilities {
			rec := fmt.Sprintf("%s.Vulnerabilities[%d]", rec, j)
			var v trivyVulnerability
			if err := json.Unmarshal(raw, &v); err != nil {
				errs = append(errs, recordErr(name, rec, "%v", err))
				continue
			}
			f, err := trivyToFinding(v, res.Type, name)
			if err != nil {
				if v.VulnerabilityID != "" {
					rec += " (" + v.VulnerabilityID + ")"
				}
				errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
				continue
			}
			found = append(found, f)
		}
	}
	return Merge(withArtifact(found, stringField(doc, "ArtifactName"))), errs
}

func trivyToFinding(v trivyVulnerability, resultType, name string) (Finding, error) {
	if v.VulnerabilityID == "" {
		return Finding{}, errors.New("no VulnerabilityID")
	}
	if v.PkgName == "" && v.PkgIdentifier.PURL == "" {
		return Finding{}, errors.New("no PkgName and no PkgIdentifier.PURL")
	}
	var (
		pkg Package
		err error
	)
	if v.PkgIdentifier.PURL != "" {
		pkg, err = newPackage("", v.PkgName, v.InstalledVersion, v.PkgIdentifier.PURL)
	} else if eco, ok := trivyTypes[resultType]; ok {
		pkg, err = newPackage(eco, v.PkgName, v.InstalledVersion, "")
	} else {
		// Reports of Trivy before 0.49 have no package URLs: name
		// distribution packages by their OS family, others as generic.
		typ, ns := "generic", ""
		if t, ok := trivyOSTypes[resultType]; ok {
			typ, ns = t, resultType
		}
		pkg, err = newPackage("", "", v.InstalledVersion, packageurl.NewPackageURL(typ, ns, v.PkgName, v.InstalledVersion, nil, "").ToString())
	}
	if err != nil {
		return Finding{}, err
	}
	return Finding{
		Package:       pkg,
		Vulnerability: Vulnerability{ID: v.VulnerabilityID, Aliases: slices.Clone(v.VendorIDs)},
		Severity:      trivySeverity(v),
		FixedVersion:  v.FixedVersion,
		Sources:       []Source{{Tool: string(FormatTrivy), File: name}},
	}, nil
}

// trivySeverity takes the level from Severity (which Trivy chose from
// SeveritySource) and the score from that source's CVSS, preferring v4.0,
// then v3, then v2; without a SeveritySource entry, from the source that
// sorts first.
func trivySeverity(v trivyVulnerability) Severity {
	sev := Severity{Level: normalizeLevel(v.Severity)}
	c, ok := v.CVSS[v.SeveritySource]
	if !ok && len(v.CVSS) > 0 {
		keys := make([]string, 0, len(v.CVSS))
		for k := range v.CVSS {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		c, ok = v.CVSS[keys[0]], true
	}
	if !ok {
		return sev
	}
	switch {
	case c.V40Vector != "":
		sev.Score, sev.Vector = c.V40Score, c.V40Vector
	case c.V3Vector != "":
		sev.Score, sev.Vector = c.V3Score, c.V3Vector
	case c.V2Vector != "":
		sev.Score, sev.Vector = c.V2Score, c.V2Vector
	}
	if sev.Level == LevelUnknown && sev.Vector != "" {
		sev.Level = osv.LevelOf(sev.Score)
	}
	return sev
}

// decodeDocument decodes a single JSON object into its top-level
// fields. The parsers look fields up by their exact names, because
// encoding/json matches struct fields case-insensitively and Trivy's
// "Results" would pass for OSV-Scanner's "results". An input that does not
// start with a JSON object wraps ErrWrongFormat; broken JSON (a truncated
// file), or a second JSON value after the object (two reports in one file,
// of which the second would be lost), wraps ErrMalformed. Text that is not
// JSON after the object (a tool's last log line, when its standard error
// went into the file too) is left alone, as it always was: it holds no
// report.
func decodeDocument(r io.Reader) (map[string]json.RawMessage, error) {
	br := bufio.NewReader(r)
	var skipped int64
	for {
		c, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("no JSON object: %w", ErrWrongFormat)
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			skipped++
			continue
		}
		if c != '{' {
			return nil, fmt.Errorf("not a JSON object (starts with %q): %w", c, ErrWrongFormat)
		}
		if err := br.UnreadByte(); err != nil {
			return nil, err
		}
		break
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(br)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", jsonError(err), ErrMalformed)
	}
	end := skipped + dec.InputOffset()
	if tok, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("a second JSON value (%v) follows its JSON object, which ends at byte %d: give each report as an input of its own: %w", tok, end, ErrMalformed)
	}
	return doc, nil
}

// jsonError says what encoding/json's err means of an input: one that
// ends inside its JSON (a download or a copy cut short), which it calls
// "unexpected EOF" or "unexpected end of JSON input", is said to be cut
// short.
func jsonError(err error) string {
	var syn *json.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &syn) && syn.Error() == "unexpected end of JSON input" {
		return "it ends inside its JSON: it is cut short"
	}
	return err.Error()
}

// stringField is the top-level string field key of doc, "" when it is
// missing or not a string: for what is only told, never needed.
func stringField(doc map[string]json.RawMessage, key string) string {
	var s string
	_, _ = field(doc, key, &s)
	return s
}

// field decodes the top-level field key of doc into v, if it is there. A
// value of the wrong type means the document is not the expected format.
func field(doc map[string]json.RawMessage, key string, v any) (bool, error) {
	raw, ok := doc[key]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("%s: %v: %w", key, err, ErrWrongFormat)
	}
	return true, nil
}
