package report

import (
	"io"
	"slices"
	"strings"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/evidentsec/evident/internal/assess"
)

// writeOpenVEX renders one OpenVEX 0.2.0 statement per vulnerability and
// product, with the vulnerable packages as its subcomponents
// (docs/priority.md): Grype and Trivy match the product against the image
// or SBOM they scan and the subcomponent against the package they found,
// so a statement about one service never applies to another. The status
// is the most cautious of the services that run the product. A finding
// with no product is stated for the package alone, never as not_affected.
func writeOpenVEX(w io.Writer, r *Result, opts Options) error {
	generated := r.Generated
	doc := vex.VEX{
		Metadata: vex.Metadata{
			Context:   vex.ContextLocator(),
			Author:    "evident",
			Timestamp: &generated,
			Version:   1,
			Tooling:   "evident " + r.Version,
		},
		Statements: []vex.Statement{},
	}
	// Instances come ordered by vulnerability, product and package: the
	// packages of one statement are adjacent.
	var group []*instance
	flush := func() {
		if len(group) > 0 {
			doc.Statements = append(doc.Statements, openVEXStatement(group))
			group = group[:0]
		}
	}
	for _, in := range vexInstances(r, opts.Products, opts.Warn) {
		if len(group) > 0 && (group[0].Vulnerability.ID != in.Vulnerability.ID || group[0].Product.PURL != in.Product.PURL || in.Product.PURL == "") {
			flush()
		}
		group = append(group, in)
	}
	flush()
	id, err := doc.GenerateCanonicalID()
	if err != nil {
		return err
	}
	doc.ID = id
	return doc.ToJSON(w)
}

// openVEXStatement states the instances of one vulnerability in one
// product (or, without a product, in one package).
func openVEXStatement(group []*instance) vex.Statement {
	first := group[0]
	st := vex.Statement{Vulnerability: vex.Vulnerability{Name: vex.VulnerabilityID(first.Vulnerability.ID)}}
	for _, in := range group {
		for _, alias := range in.Vulnerability.Aliases {
			if id := vex.VulnerabilityID(alias); !slices.Contains(st.Vulnerability.Aliases, id) {
				st.Vulnerability.Aliases = append(st.Vulnerability.Aliases, id)
			}
		}
		if caution[in.Status] > caution[string(st.Status)] {
			st.Status = vex.Status(in.Status)
		}
	}
	slices.Sort(st.Vulnerability.Aliases)
	var text []string
	for _, in := range group {
		if s := in.statement(); string(st.Status) == in.Status && !slices.Contains(text, s) {
			text = append(text, s)
		}
	}
	component := func(purl string) vex.Component {
		return vex.Component{ID: purl, Identifiers: map[vex.IdentifierType]string{vex.PURL: purl}}
	}
	// A package is named by its package URL, and by the one Trivy and
	// Grype give it when they write it otherwise (ScannerPURL), or their
	// matching would not apply the statement to it.
	var pkgs []vex.Component
	for _, in := range group {
		for _, purl := range []string{in.Package.PURL, in.Package.ScannerPURL} {
			if purl != "" && !slices.ContainsFunc(pkgs, func(c vex.Component) bool { return c.ID == purl }) {
				pkgs = append(pkgs, component(purl))
			}
		}
	}
	if first.Product.PURL == "" {
		for _, c := range pkgs {
			st.Products = append(st.Products, vex.Product{Component: c})
		}
	} else {
		p := vex.Product{Component: component(first.Product.PURL)}
		for _, c := range pkgs {
			p.Subcomponents = append(p.Subcomponents, vex.Subcomponent{Component: c})
		}
		st.Products = []vex.Product{p}
	}
	statement := strings.Join(text, "; ")
	switch string(st.Status) {
	case assess.StatusNotAffected:
		st.Justification = vex.Justification(first.justification())
		st.ImpactStatement = statement
	case assess.StatusAffected:
		st.ActionStatement = statement
	default:
		st.StatusNotes = statement
	}
	return st
}
