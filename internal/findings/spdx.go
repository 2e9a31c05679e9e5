package findings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
	"github.com/spdx/tools-golang/tagvalue"
)

// spdxJSONVersions are the SPDX versions whose JSON packages decode as
// SPDX 2.3 packages: 2.3 only added optional fields.
var spdxJSONVersions = []string{"SPDX-2.1", "SPDX-2.2", spdx.Version}

// ParseSPDX reads an SPDX 2.x document (JSON or tag-value) and
// looks each package up in m: each record that affects a package is a
// finding with Static required, since the document shows the package in
// the build and no more. A package is identified by its PACKAGE-MANAGER
// purl external reference.
//
// Packages that cannot be used (a library without a package URL, a
// package URL that does not parse, no version) are reported as
// *RecordError naming the package's SPDXID, and skipped. An input that is
// not SPDX is one error wrapping ErrWrongFormat; a document that does not
// decode, one wrapping ErrMalformed. JSON is decoded package by package,
// so that one malformed package does not stop the others. The document
// name (Syft's is the image or directory it scanned) is the sources'
// Artifact.
func ParseSPDX(r io.Reader, name string, m Matcher) ([]Finding, []error) {
	docName, comps, errs := readSPDX(r, name)
	fs, merrs := matchComponents(comps, m, string(FormatSPDX), name)
	return withArtifact(fs, docName), append(errs, merrs...)
}

// readSPDX returns the name of an SPDX document and its packages that
// carry a package URL.
func readSPDX(r io.Reader, name string) (string, []Component, []error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", nil, []error{fmt.Errorf("read SPDX document %s: %w", name, err)}
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	var (
		docName string
		pkgs    []*spdx.Package
		errs    []error
	)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		docName, pkgs, errs, err = decodeSPDXJSON(trimmed, name)
	case len(trimmed) > 0 && trimmed[0] == '<':
		// tools-golang reads RDF with spdx/gordf, whose parser writes one
		// error variable from many goroutines (a data race) and starts a
		// goroutine per XML element of outside input; RDF is left out
		// rather than read unsafely.
		err = fmt.Errorf("%s: SPDX RDF/XML is not supported, convert it to SPDX JSON or tag-value (e.g. with the spdx-tools converter): %w", name, ErrWrongFormat)
	case isSPDXTagValue(trimmed):
		var doc *spdx.Document
		if doc, err = tagvalue.Read(bytes.NewReader(trimmed)); err != nil {
			err = fmt.Errorf("%s: SPDX tag-value: %v: %w", name, err, ErrMalformed)
		} else {
			docName, pkgs = doc.DocumentName, doc.Packages
		}
	default:
		err = fmt.Errorf("%s: not an SPDX document (neither JSON nor tag-value): %w", name, ErrWrongFormat)
	}
	if err != nil {
		return "", nil, []error{err}
	}
	var out []Component
	for i, p := range pkgs {
		if p == nil {
			continue
		}
		rec := fmt.Sprintf("packages[%d] (%s)", i, common.RenderElementID(p.PackageSPDXIdentifier))
		c, ok, err := spdxToComponent(p)
		if err != nil {
			errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
			continue
		}
		if ok {
			out = append(out, c)
		}
	}
	return docName, out, errs
}

// decodeSPDXJSON decodes the name of an SPDX JSON document and its
// packages, one by one with tools-golang's types.
func decodeSPDXJSON(data []byte, name string) (string, []*spdx.Package, []error, error) {
	var top struct {
		SPDXVersion string            `json:"spdxVersion"`
		Name        string            `json:"name"`
		Packages    []json.RawMessage `json:"packages"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return "", nil, nil, fmt.Errorf("%s: SPDX JSON: %s: %w", name, jsonError(err), ErrMalformed)
	}
	if !slices.Contains(spdxJSONVersions, top.SPDXVersion) {
		return "", nil, nil, fmt.Errorf("%s: spdxVersion %q, want one of %s: %w", name, top.SPDXVersion, strings.Join(spdxJSONVersions, ", "), ErrWrongFormat)
	}
	var (
		pkgs []*spdx.Package
		errs []error
	)
	for i, raw := range top.Packages {
		var p spdx.Package
		if err := json.Unmarshal(raw, &p); err != nil {
			errs = append(errs, recordErr(name, fmt.Sprintf("packages[%d]%s", i, spdxIDOf(raw)), "%v", err))
			pkgs = append(pkgs, nil) // keeps the indexes of the others
			continue
		}
		pkgs = append(pkgs, &p)
	}
	return top.Name, pkgs, errs, nil
}

// spdxIDOf is " (SPDXID)" for a package that did not decode, when its
// SPDXID at least is a string.
func spdxIDOf(raw json.RawMessage) string {
	var p struct {
		ID string `json:"SPDXID"`
	}
	if json.Unmarshal(raw, &p) != nil || p.ID == "" {
		return ""
	}
	return " (" + p.ID + ")"
}

// spdxPurposes are the primary package purposes of packages that must
// have a package URL to be of use; other packages (files, containers,
// operating systems, the described source directory) without one are
// context, and skipped silently.
var spdxPurposes = []string{"LIBRARY", "FRAMEWORK"}

// spdxToComponent converts a package by its first purl external
// reference.
func spdxToComponent(p *spdx.Package) (Component, bool, error) {
	var purl string
	for _, ref := range p.PackageExternalReferences {
		if ref != nil && ref.Category == common.CategoryPackageManager && ref.RefType == common.TypePackageManagerPURL {
			purl = ref.Locator
			break
		}
	}
	if purl == "" {
		if slices.Contains(spdxPurposes, p.PrimaryPackagePurpose) {
			return Component{}, false, errors.New("no PACKAGE-MANAGER purl external reference")
		}
		return Component{}, false, nil
	}
	pkg, err := componentPackage(purl, p.PackageVersion)
	switch {
	case errors.Is(err, errDevel):
		return Component{}, false, nil
	case err != nil:
		return Component{}, false, err
	}
	comp := Component{Ref: common.RenderElementID(p.PackageSPDXIdentifier), Package: pkg, VersionUnknown: syftStub(purl, p.PackageVersion)}
	comp.SourceName, comp.SourceVersion = distroSource(purl)
	if rest, ok := strings.CutPrefix(p.PackageSourceInfo, "built package from: "); ok && sourceNamed(pkg.PURL) && comp.SourceName == "" {
		// Trivy's: "built package from: openssl 1.1.1n-0+deb11u1".
		comp.SourceName, comp.SourceVersion, _ = strings.Cut(rest, " ")
	}
	return comp, true, nil
}
