package findings

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/package-url/packageurl-go"

	"github.com/evidentsec/evident/internal/osv"
)

// The Grype JSON document (anchore/grype grype/presenter/models), with
// the fields that findings use.
type (
	grypeMatch struct {
		Vulnerability          grypeVulnerability   `json:"vulnerability"`
		RelatedVulnerabilities []grypeVulnerability `json:"relatedVulnerabilities"`
		Artifact               struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Type    string `json:"type"`
			PURL    string `json:"purl"`
		} `json:"artifact"`
	}
	grypeVulnerability struct {
		ID       string      `json:"id"`
		Severity string      `json:"severity"`
		CVSS     []grypeCVSS `json:"cvss"`
		Fix      struct {
			Versions []string `json:"versions"`
			State    string   `json:"state"`
		} `json:"fix"`
	}
	grypeCVSS struct {
		Type    string `json:"type"`
		Version string `json:"version"`
		Vector  string `json:"vector"`
		Metrics struct {
			BaseScore float64 `json:"baseScore"`
		} `json:"metrics"`
	}
)

// grypeTypes maps syft package types to OSV ecosystems, for artifacts
// without a package URL.
var grypeTypes = map[string]string{
	"go-module": osv.EcosystemGo, "npm": osv.EcosystemNPM, "python": osv.EcosystemPyPI,
	"java-archive": osv.EcosystemMaven, "rust-crate": osv.EcosystemCratesIO,
	"php-composer": osv.EcosystemPackagist, "gem": osv.EcosystemRubyGems,
	"dotnet": osv.EcosystemNuGet, "hex": osv.EcosystemHex, "dart-pub": osv.EcosystemPub,
}

// ParseGrype reads a Grype JSON document (grype -o json). Every entry of
// matches becomes a finding of its artifact; the ids of
// relatedVulnerabilities become aliases (Grype relates a GHSA to its
// CVE), and the fix versions give the fixed version. Ignored matches are
// not findings. The source's target (the image as the user named it, or
// the directory) is the sources' Artifact.
//
// A malformed match is reported as a *RecordError naming it
// ("matches[3] (GHSA-…)") and skipped. An input that is not a Grype
// document, or is not valid JSON, is one error wrapping ErrWrongFormat or
// ErrMalformed.
func ParseGrype(r io.Reader, name string) ([]Finding, []error) {
	doc, err := decodeDocument(r)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		matches         []json.RawMessage
		distro, descrip struct {
			Name string `json:"name"`
		}
	)
	ok, err := field(doc, "matches", &matches)
	if err == nil && !ok {
		err = fmt.Errorf("not a Grype JSON document (no matches): %w", ErrWrongFormat)
	}
	if err == nil {
		_, err = field(doc, "descriptor", &descrip)
	}
	if err == nil && descrip.Name != "" && descrip.Name != "grype" {
		err = fmt.Errorf("written by %q, not grype: %w", descrip.Name, ErrWrongFormat)
	}
	if err == nil {
		_, err = field(doc, "distro", &distro)
	}
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		found []Finding
		errs  []error
	)
	for i, raw := range matches {
		rec := fmt.Sprintf("matches[%d]", i)
		var m grypeMatch
		if err := json.Unmarshal(raw, &m); err != nil {
			errs = append(errs, recordErr(name, rec, "%v", err))
			continue
		}
		f, err := grypeToFinding(m, distro.Name, name)
		if err != nil {
			if m.Vulnerability.ID != "" {
				rec += " (" + m.Vulnerability.ID + ")"
			}
			errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
			continue
		}
		found = append(found, f)
	}
	return Merge(withArtifact(found, grypeTarget(doc))), errs
}

// grypeTarget is what Grype scanned: source.target is the path of a
// directory or file, or for an image an object with the userInput.
func grypeTarget(doc map[string]json.RawMessage) string {
	var src struct {
		Target json.RawMessage `json:"target"`
	}
	if ok, err := field(doc, "source", &src); !ok || err != nil {
		return ""
	}
	var path string
	if json.Unmarshal(src.Target, &path) == nil {
		return path
	}
	var image struct {
		UserInput string `json:"userInput"`
	}
	_ = json.Unmarshal(src.Target, &image)
	return image.UserInput
}

func grypeToFinding(m grypeMatch, distro, name string) (Finding, error) {
	v, a := m.Vulnerability, m.Artifact
	if v.ID == "" {
		return Finding{}, errors.New("no vulnerability.id")
	}
	if a.Name == "" && a.PURL == "" {
		return Finding{}, errors.New("no artifact.name and no artifact.purl")
	}
	var (
		pkg Package
		err error
	)
	if a.PURL != "" {
		pkg, err = newPackage("", a.Name, a.Version, a.PURL)
	} else if eco, ok := grypeTypes[a.Type]; ok {
		pkg, err = newPackage(eco, a.Name, a.Version, "")
	} else {
		// Distribution and binary packages without a purl: name them by
		// their syft type (rpm, deb, apk) within the distro, or as generic.
		typ, ns := "generic", ""
		if a.Type == "rpm" || a.Type == "deb" || a.Type == "apk" {
			typ, ns = a.Type, distro
		}
		pkg, err = newPackage("", "", a.Version, packageurl.NewPackageURL(typ, ns, a.Name, a.Version, nil, "").ToString())
	}
	if err != nil {
		return Finding{}, err
	}
	f := Finding{
		Package:       pkg,
		Vulnerability: Vulnerability{ID: v.ID},
		Severity:      grypeSeverity(v, m.RelatedVulnerabilities),
		Sources:       []Source{{Tool: string(FormatGrype), File: name}},
	}
	for _, rel := range m.RelatedVulnerabilities {
		if rel.ID != "" && rel.ID != v.ID {
			f.Vulnerability.Aliases = append(f.Vulnerability.Aliases, rel.ID)
		}
	}
	if v.Fix.State == "fixed" {
		f.FixedVersion = lowestFix(pkg.Ecosystem, pkg.Version, v.Fix.Versions)
	}
	return f, nil
}

// grypeSeverity takes the level from the matched vulnerability's
// severity, and the score from its CVSS entry of the highest version
// (from a related vulnerability's when it has none), preferring the
// "Primary" entries of NVD over secondary ones.
func grypeSeverity(v grypeVulnerability, related []grypeVulnerability) Severity {
	sev := Severity{Level: normalizeLevel(v.Severity)}
	best, ok := bestGrypeCVSS(v.CVSS)
	for _, rel := range related {
		if ok {
			break
		}
		best, ok = bestGrypeCVSS(rel.CVSS)
	}
	if !ok {
		return sev
	}
	sev.Score, sev.Vector = best.Metrics.BaseScore, best.Vector
	if sev.Level == LevelUnknown {
		sev.Level = osv.LevelOf(sev.Score)
	}
	return sev
}

func bestGrypeCVSS(cs []grypeCVSS) (grypeCVSS, bool) {
	var (
		best grypeCVSS
		ok   bool
	)
	better := func(a, b grypeCVSS) bool {
		va, _ := strconv.ParseFloat(a.Version, 64)
		vb, _ := strconv.ParseFloat(b.Version, 64)
		pa, pb := a.Type != "Secondary", b.Type != "Secondary"
		if pa != pb {
			return pa
		}
		return cmp.Compare(va, vb) > 0
	}
	for _, c := range cs {
		if c.Vector == "" {
			continue
		}
		if !ok || better(c, best) {
			best, ok = c, true
		}
	}
	return best, ok
}
