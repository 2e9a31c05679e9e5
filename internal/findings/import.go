package findings

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb"
)

// Format names an input format of scanner reports and SBOMs.
type Format string

// Input formats. The first four are scanner reports, which name their
// vulnerabilities; the SBOM formats list packages that evident matches
// against its vulnerability database.
const (
	FormatGovulncheck Format = "govulncheck" // govulncheck -format json (a stream of messages)
	FormatTrivy       Format = "trivy"       // trivy -f json, SchemaVersion 2
	FormatGrype       Format = "grype"       // grype -o json
	FormatOSVScanner  Format = "osv-scanner" // osv-scanner --format json (v2)
	FormatCycloneDX   Format = "cyclonedx"   // CycloneDX JSON or XML
	FormatSPDX        Format = "spdx"        // SPDX JSON, tag-value or RDF
	FormatGoBinary    Format = "gobinary"    // a Go executable with embedded build info
	FormatNPMAudit    Format = "npm-audit"   // npm audit --json (npm 7+, auditReportVersion 2)
	FormatPipAudit    Format = "pip-audit"   // pip-audit --format json
	FormatLockfile    Format = "lockfile"    // a package manager's lockfile or manifest (ParseLockfile)
	FormatEvident     Format = "evident"     // evident findings import --format json (Document)
)

// Errors of the importers. A parser returns file-level errors (the input
// is not its format, or could not be read at all) wrapping ErrWrongFormat
// or ErrMalformed, and record-level errors as *RecordError.
var (
	// ErrUnknownFormat means that Detect could not tell the format.
	ErrUnknownFormat = errors.New("unknown input format")
	// ErrEmpty means that Detect was given nothing but white space; the
	// error wraps ErrUnknownFormat too. No format is the right hint then.
	ErrEmpty = errors.New("empty input")
	// ErrWrongFormat means that an input is not the format it was parsed as.
	ErrWrongFormat = errors.New("not the expected format")
	// ErrMalformed means that an input of the right format could not be
	// decoded past some point (truncated or broken JSON).
	ErrMalformed = errors.New("malformed input")
)

// errNoVersion reports a package that names no version: nothing to match.
var errNoVersion = errors.New("no version")

// RecordError reports one record of an input that was skipped; the other
// records of the input still load.
type RecordError struct {
	// File is the input the record came from.
	File string
	// Record locates the record within the input, e.g.
	// "Results[0].Vulnerabilities[3] (CVE-2021-38561)" or "message 7".
	Record string
	// Err says what is wrong with the record.
	Err error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.File, e.Record, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// recordErr builds a *RecordError with a formatted reason.
func recordErr(file, record, format string, args ...any) *RecordError {
	return &RecordError{File: file, Record: record, Err: fmt.Errorf(format, args...)}
}

// Detect tells the format of an input from its first bytes (a prefix is
// enough; detectLen, 64 KiB, is plenty for every supported format). It returns an
// error wrapping ErrUnknownFormat when no format matches.
func Detect(prefix []byte) (Format, error) {
	b := bytes.TrimLeft(bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("%w: %w", ErrEmpty, ErrUnknownFormat)
	case isExecutable(b):
		return FormatGoBinary, nil
	case b[0] == '{':
		return detectJSON(b)
	case b[0] == '<':
		s := string(b[:min(len(b), 4096)])
		switch {
		case strings.Contains(s, "cyclonedx.org/schema/bom"):
			return FormatCycloneDX, nil
		case strings.Contains(s, "spdx.org/rdf/terms"):
			return FormatSPDX, nil
		}
	case isSPDXTagValue(b):
		return FormatSPDX, nil
	}
	return "", ErrUnknownFormat
}

// DetectFile tells the format of an input from its first bytes, as Detect
// does, and from its name when its content does not tell: the lockfiles
// and manifests of package managers (yarn.lock, requirements.txt,
// pom.xml, ...; see IsLockfile) are known by their names.
func DetectFile(name string, prefix []byte) (Format, error) {
	f, err := Detect(prefix)
	if err != nil && IsLockfile(name) {
		return FormatLockfile, nil
	}
	return f, err
}

// isExecutable reports whether b starts like an ELF, PE or Mach-O file,
// the executable formats that carry Go build information.
func isExecutable(b []byte) bool {
	for _, magic := range []string{"\x7fELF", "MZ", "\xfe\xed\xfa\xce", "\xfe\xed\xfa\xcf", "\xce\xfa\xed\xfe", "\xcf\xfa\xed\xfe"} {
		if bytes.HasPrefix(b, []byte(magic)) {
			return true
		}
	}
	return false
}

// isSPDXTagValue reports whether the first line that is not a comment is
// an SPDX tag-value SPDXVersion tag.
func isSPDXTagValue(b []byte) bool {
	for line := range strings.Lines(string(b[:min(len(b), 4096)])) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return strings.HasPrefix(line, "SPDXVersion:")
	}
	return false
}

// detectJSON tells a JSON format by the keys of its first top-level
// object, read as tokens so that a truncated prefix still works.
func detectJSON(b []byte) (Format, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	depth := 0
	expectKey := false
	var end error // why the tokens ended before the object did
	for {
		tok, err := dec.Token()
		if err != nil {
			end = err
			break // the end of the prefix: decide on the keys seen so far
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			expectKey = depth == 1 && t != '['
			if depth == 0 {
				return formatOfKeys(keys)
			}
			continue
		case string:
			if depth == 1 && expectKey {
				keys = append(keys, t)
				expectKey = false
				continue
			}
		}
		if depth == 1 {
			expectKey = true
		}
	}
	f, err := formatOfKeys(keys)
	if err == nil {
		return f, nil
	}
	// Say why an input is no format's when the JSON does: a syntax error,
	// or an object that the input ends in, when the input is shorter than
	// the prefix callers read (so it is the whole input).
	var syntax *json.SyntaxError
	switch {
	case errors.As(end, &syntax):
		return "", fmt.Errorf("invalid JSON after %d bytes: %v: %w", syntax.Offset, syntax, ErrUnknownFormat)
	case errors.Is(end, io.EOF) && len(b) < detectLen:
		return "", fmt.Errorf("JSON cut short: the input ends after %d bytes, inside an object with keys %q: %w", len(b), keys, ErrUnknownFormat)
	}
	return "", err
}

// detectLen is the prefix Detect is given: 64 KiB is plenty for every
// supported format.
const detectLen = 64 << 10

// govulncheckKeys are the fields of a govulncheck message; every message
// has exactly one of them.
var govulncheckKeys = []string{"config", "progress", "SBOM", "osv", "finding"}

func formatOfKeys(keys []string) (Format, error) {
	has := func(k string) bool { return slices.Contains(keys, k) }
	switch {
	case len(keys) > 0 && slices.Contains(govulncheckKeys, keys[0]):
		return FormatGovulncheck, nil
	case has("bomFormat"):
		return FormatCycloneDX, nil
	case has("spdxVersion"):
		return FormatSPDX, nil
	case has("SchemaVersion"):
		return FormatTrivy, nil
	case has("matches"):
		return FormatGrype, nil
	case has("results"):
		return FormatOSVScanner, nil
	case has("auditReportVersion"), has("advisories") && has("actions"):
		// npm 6's report (advisories, actions) is detected so that its
		// parser can say to run a newer npm.
		return FormatNPMAudit, nil
	case has("dependencies") && has("fixes"):
		return FormatPipAudit, nil
	case has("lockfileVersion"):
		return FormatLockfile, nil // package-lock.json, npm-shrinkwrap.json
	case has("version") && has("findings") && !has("tool") && !has("summary"):
		// evident analyze's JSON report has a version and findings too,
		// after its tool and summary: assessments, not findings.
		return FormatEvident, nil
	}
	if len(keys) > 5 {
		keys = append(keys[:5:5], "...")
	}
	return "", fmt.Errorf("JSON object with keys %q: %w", keys, ErrUnknownFormat)
}

// Severity levels, as Finding.Severity.Level spells them.
const (
	LevelCritical = "critical"
	LevelHigh     = "high"
	LevelMedium   = "medium"
	LevelLow      = "low"
	LevelUnknown  = "unknown"
)

// levelRank orders severity levels; unknown and anything else rank 0.
func levelRank(level string) int {
	switch level {
	case LevelCritical:
		return 4
	case LevelHigh:
		return 3
	case LevelMedium:
		return 2
	case LevelLow:
		return 1
	}
	return 0
}

// normalizeLevel maps the severity words of the tools (Trivy's CRITICAL,
// Grype's Negligible, ...) to a level.
func normalizeLevel(s string) string {
	switch l := strings.ToLower(strings.TrimSpace(s)); l {
	case LevelCritical, LevelHigh, LevelMedium, LevelLow:
		return l
	case "moderate":
		return LevelMedium
	case "negligible", "none":
		return LevelLow
	}
	return LevelUnknown
}

// osvSeverity is the highest severity among the CVSS vectors of OSV
// severity entries. Entries of other types, or with vectors that do not
// parse, are ignored: severity is advisory and its absence is "unknown".
func osvSeverity(sevs ...[]osv.Severity) Severity {
	best := Severity{Level: LevelUnknown}
	for _, list := range sevs {
		for _, s := range list {
			switch s.Type {
			case osv.SeverityCVSSv2, osv.SeverityCVSSv3, osv.SeverityCVSSv4:
			default:
				continue
			}
			score, err := osv.ScoreVector(s.Score)
			if err != nil {
				continue
			}
			cand := Severity{Level: osv.LevelOf(score), Score: score, Vector: s.Score}
			if s.Type == osv.SeverityCVSSv2 && cand.Level == LevelCritical {
				cand.Level = LevelHigh // CVSS v2 rates 7.0 to 10.0 high
			}
			if higherSeverity(cand, best) {
				best = cand
			}
		}
	}
	return best
}

// higherSeverity reports whether a ranks above b: by level, then score,
// then vector (only so that the choice is deterministic).
func higherSeverity(a, b Severity) bool {
	if ra, rb := levelRank(a.Level), levelRank(b.Level); ra != rb {
		return ra > rb
	}
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Vector > b.Vector
}

// osTypes maps package URL types and namespaces of distribution packages
// to OSV ecosystem names, so that their versions compare with the
// ecosystem's rules.
var osTypes = map[string]string{
	"deb/debian":     "Debian",
	"deb/ubuntu":     "Ubuntu",
	"apk/alpine":     "Alpine",
	"apk/wolfi":      "Wolfi",
	"apk/chainguard": "Chainguard",
	"rpm/redhat":     "Red Hat",
	"rpm/rocky":      "Rocky Linux",
	"rpm/almalinux":  "AlmaLinux",
	"rpm/opensuse":   "openSUSE",
	"rpm/sles":       "SUSE",
}

// osTypeAliases map the types and namespaces that Trivy writes for a
// distribution's packages to those Syft writes, os-release's ID, which
// Grype's findings share: alma to almalinux, amazon to amzn, oracle to ol,
// suse to sles. So two tools' findings of one package have one PURL and
// merge, and a distribution is named one way, whichever tool wrote it.
// They are kept apart so that osTypes stays one to one and distroPURL
// names each ecosystem by one package URL.
var osTypeAliases = map[string]string{
	"rpm/alma":   "almalinux",
	"rpm/amazon": "amzn",
	"rpm/oracle": "ol",
	"rpm/suse":   "sles",
}

// newPackage builds the package of a finding from what a tool reported:
// an OSV ecosystem, name and version, and a package URL, any of which may
// be empty. Go versions get their "v" prefix (tools disagree on it), and
// the package URL drops its qualifiers (arch, distro) so that the same
// package reported by two tools has the same PURL. Without an ecosystem,
// the package URL names the package; for Go and npm a name given beside
// it that differs from it only in case is taken instead, since Trivy
// lowercases golang and npm package URLs (trivy pkg/purl) but not the
// names it reports, and Go module paths and old npm names are
// case-sensitive (github.com/Masterminds/goutils, JSONStream). A PyPI
// name is PEP 503's in Name and PURL, and as the tool wrote it in
// ScannerPURL when the two differ.
func newPackage(ecosystem, name, version, purl string) (Package, error) {
	if ecosystem == "" && purl != "" {
		eco, n, v, err := osv.PackageFromPURL(purl)
		switch {
		case err == nil:
			caseSensitive := eco == osv.EcosystemGo || eco == osv.EcosystemNPM
			switch {
			case caseSensitive && strings.EqualFold(name, n):
			case eco == osv.EcosystemPyPI:
				// The name as reported, with its dots, for ScannerPURL;
				// else as the package URL writes it.
				if osv.NormalizePyPI(name) != n {
					p, _ := packageurl.FromString(purl) // PackageFromPURL parsed it
					name = p.Name
				}
			default:
				name = n
			}
			ecosystem = eco
			if version == "" {
				version = v
			}
		case errors.Is(err, osv.ErrUnknownEcosystem):
			return distroPackage(purl, version)
		default:
			return Package{}, err
		}
	}
	if ecosystem == "" || name == "" {
		return Package{}, errors.New("no package URL and no ecosystem and name")
	}
	if version == "" {
		return Package{}, fmt.Errorf("package %s: %w", name, errNoVersion)
	}
	if ecosystem == osv.EcosystemGo {
		version = goVersion(version)
	}
	p, err := osv.PURL(ecosystem, name, version)
	if err != nil {
		if purl == "" {
			purl = distroPURL(ecosystem, name, version)
		}
		if purl != "" {
			p, err := distroPackage(purl, version)
			if err == nil && strings.Contains(ecosystem, ":") {
				// The release the tool named ("Debian:11", as OSV-Scanner
				// writes it), which the package URL may not carry.
				p.Ecosystem = ecosystem
			}
			return p, err
		}
		return Package{}, err
	}
	var scanner string
	if ecosystem == osv.EcosystemPyPI {
		// As packageurl-go reads a pypi package URL's name (lower case,
		// "_" as "-"), which Trivy writes and go-vex compares.
		if sp := packageurl.NewPackageURL(packageurl.TypePyPi, "", strings.ToLower(strings.ReplaceAll(name, "_", "-")), version, nil, "").ToString(); sp != p {
			scanner = sp
		}
		name = osv.NormalizePyPI(name)
	}
	return Package{PURL: p, Ecosystem: ecosystem, Name: name, Version: version, ScannerPURL: scanner}, nil
}

// distroPackage builds a package from a package URL of a type that OSV
// ecosystems do not map one to one (deb, rpm, apk, generic). A namespace
// of osTypeAliases is named as osTypes names it in PURL, and as the tool
// wrote it in ScannerPURL, which VEX consumers of that tool match.
func distroPackage(purl, version string) (Package, error) {
	p, err := packageurl.FromString(purl)
	if err != nil {
		return Package{}, fmt.Errorf("parse package URL %q: %w", purl, err)
	}
	if version == "" {
		version = p.Version
	}
	if version == "" {
		return Package{}, fmt.Errorf("package URL %q: %w", purl, errNoVersion)
	}
	q := p.Qualifiers.Map()
	version = withEpoch(version, q["epoch"])
	ns := p.Namespace
	if alias, ok := osTypeAliases[p.Type+"/"+p.Namespace]; ok {
		ns = alias
	}
	eco := osTypes[p.Type+"/"+ns]
	if eco == "" {
		eco = p.Type
	}
	if rel := distroRelease(eco, q["distro"]); rel != "" {
		eco += ":" + rel
	}
	name := p.Name
	if ns != "" && eco == p.Type {
		name = ns + "/" + p.Name
	}
	rpm := p.Type == packageurl.TypeRPM
	var scanner string
	switch e, _ := splitEpoch(version); {
	case ns != p.Namespace:
		scanner = osPURL(p.Type, p.Namespace, p.Name, version, rpm)
	case p.Type == packageurl.TypeDebian && strings.Trim(e, "0") != "":
		// Trivy's, whichever tool read the package.
		scanner = osPURL(p.Type, ns, p.Name, version, true)
	}
	return Package{PURL: osPURL(p.Type, ns, p.Name, version, rpm), Ecosystem: eco, Name: name, Version: version, ScannerPURL: scanner}, nil
}

// splitEpoch returns the epoch of a distribution package's version ("1"
// of "1:3.0-2") and what follows it, or "" and the version when it has
// none.
func splitEpoch(version string) (epoch, rest string) {
	if e, v, ok := strings.Cut(version, ":"); ok && e != "" && strings.Trim(e, "0123456789") == "" {
		return e, v
	}
	return "", version
}

// osPURL is the package URL of a distribution package without the
// qualifiers that do not identify it (arch, distro), so that two tools'
// findings of one package have one. With epochQualifier, the version's
// epoch is the epoch qualifier (none for 0): an rpm's always, as the
// package URL specification has it (PURL-TYPES, rpm) and Syft and Trivy
// write it, since a VEX statement of
// pkg:rpm/redhat/openssl-libs@1:3.0.7-24.el9 does not apply, in go-vex's
// matching (Trivy's), to their pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?epoch=1.
// A Debian package keeps its epoch in the version, as Syft writes it
// (pkg:deb/debian/libaudit1@1:3.0-2); Trivy writes the qualifier, which
// distroPackage gives as ScannerPURL.
func osPURL(typ, ns, name, version string, epochQualifier bool) string {
	var q packageurl.Qualifiers
	if e, v := splitEpoch(version); e != "" && epochQualifier {
		version = v
		if strings.Trim(e, "0") != "" {
			q = packageurl.QualifiersFromMap(map[string]string{"epoch": e})
		}
	}
	return packageurl.NewPackageURL(typ, ns, name, version, q, "").ToString()
}

// distroRelease is the release part of the OSV ecosystem of a package of
// distribution eco ("11" of "Debian:11", "22.04:LTS" of
// "Ubuntu:22.04:LTS", "v3.18" of "Alpine:v3.18"), read from the distro
// qualifier of its package URL as Syft and Trivy write it (ID-VERSION_ID
// of os-release: "debian-11.3", "ubuntu-22.04", "alpine-3.18.4"), or ""
// when the qualifier does not tell it or the distribution's records are
// not keyed by release. OSV keys these distributions' records by release
// alone: a Debian package matched as "Debian" meets none of them.
func distroRelease(eco, distro string) string {
	id, ver, _ := strings.Cut(distro, "-")
	nums := strings.Split(ver, ".")
	for i, n := range nums {
		if n == "" || strings.Trim(n, "0123456789") != "" {
			nums = nums[:i]
			break
		}
	}
	switch {
	case eco == "Debian" && id == "debian" && len(nums) >= 1:
		// Debian's records name the major release ("Debian:11"), and
		// point releases (11.3) share its archive.
		return nums[0]
	case eco == "Ubuntu" && id == "ubuntu" && len(nums) >= 2:
		// Every April release of an even year is LTS, and OSV writes
		// its ecosystem with the suffix ("Ubuntu:22.04:LTS").
		rel := nums[0] + "." + nums[1]
		if y, err := strconv.Atoi(nums[0]); err == nil && y%2 == 0 && nums[1] == "04" {
			rel += ":LTS"
		}
		return rel
	case eco == "Alpine" && id == "alpine" && len(nums) >= 2:
		return "v" + nums[0] + "." + nums[1]
	case eco == "AlmaLinux" && (id == "almalinux" || id == "alma") && len(nums) >= 1:
		// AlmaLinux's records name the major release ("AlmaLinux:8"),
		// as osv-scalibr keys them; Syft writes almalinux-8.9, Trivy
		// alma-8.9.
		return nums[0]
	}
	return ""
}

// withEpoch puts a package URL's epoch qualifier back into a
// distribution package's version: Trivy (deb and rpm) and Syft (rpm)
// write a package URL's version without its epoch and the epoch as the
// qualifier ("pkg:rpm/redhat/openssl@3.0.7-24.el9?epoch=1"), while
// their JSON reports, the OSV records of the distributions and the
// version comparison write it in the version ("1:3.0.7-24.el9"). A
// version that has an epoch already, or an epoch of 0 (the same as
// none), is returned as it is.
func withEpoch(version, epoch string) string {
	if epoch == "" || epoch == "0" || strings.Trim(epoch, "0123456789") != "" {
		return version
	}
	if e, _, ok := strings.Cut(version, ":"); ok && e != "" && strings.Trim(e, "0123456789") == "" {
		return version
	}
	return epoch + ":" + version
}

// distroPURL is the package URL of a package of a distribution ecosystem
// ("Debian:12", "Alpine:v3.18", as OSV-Scanner writes them), or "" for
// other ecosystems.
func distroPURL(ecosystem, name, version string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	for typeNS, eco := range osTypes {
		if eco == base {
			typ, ns, _ := strings.Cut(typeNS, "/")
			return packageurl.NewPackageURL(typ, ns, name, version, nil, "").ToString()
		}
	}
	return ""
}

// goVersion gives a Go module version its canonical "v" prefix; Go
// toolchain versions ("go1.22.1", "go1.27rc2") become SemVer ("v1.22.1",
// "v1.27.0-rc.2") as govulncheck writes them for the stdlib module.
func goVersion(v string) string {
	v = vulndb.GoToolchainVersion(v)
	if v != "" && !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v
}

// ReportArtifact is what a report or SBOM in format (auto or "" to
// detect it) says it scanned, as its findings' Source.Artifact names it:
// govulncheck's root packages, Trivy's ArtifactName, Grype's source, the
// subject of a CycloneDX BOM, an SPDX document's name, a Go executable's
// main package. A clean scan has no findings to carry it, yet it still
// tells whose findings it clears. It returns "" when the input does not
// say, or is not of a format that does.
func ReportArtifact(data []byte, format Format) string {
	if format == "" || format == "auto" {
		format, _ = Detect(data)
	}
	r := bytes.NewReader(data)
	switch format {
	case FormatGovulncheck:
		return commonPath(govulncheckRoots(r))
	case FormatTrivy, FormatGrype:
		doc, err := decodeDocument(r)
		if err != nil {
			return ""
		}
		if format == FormatTrivy {
			return stringField(doc, "ArtifactName")
		}
		return grypeTarget(doc)
	case FormatCycloneDX:
		bom, err := decodeCycloneDX(r, "")
		if err != nil || bom.metadata == nil {
			return ""
		}
		return bom.metadata.Name
	case FormatSPDX:
		name, _, _ := readSPDX(r, "")
		return name
	case FormatGoBinary:
		bi, err := buildinfo.Read(r)
		if err != nil {
			return ""
		}
		return bi.Path
	}
	return ""
}
