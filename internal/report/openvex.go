package report

import (
	"io"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/evidentsec/evident/internal/assess"
)

// writeOpenVEX renders one OpenVEX 0.2.0 statement per finding. The
// product is the service's own package URL when Options.Products names
// one, with the vulnerable package as subcomponent, the way Trivy and
// Grype match statements for an image or binary; otherwise the
// vulnerable package itself is the product.
func writeOpenVEX(w io.Writer, r *Result, products map[string]string) error {
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
	for _, a := range r.Assessments {
		f := a.Finding
		st := vex.Statement{
			Vulnerability: vex.Vulnerability{Name: vex.VulnerabilityID(f.Vulnerability.ID)},
			Status:        vex.Status(a.VEX.Status),
		}
		for _, alias := range f.Vulnerability.Aliases {
			st.Vulnerability.Aliases = append(st.Vulnerability.Aliases, vex.VulnerabilityID(alias))
		}
		pkg := vex.Component{ID: f.Package.PURL, Identifiers: map[vex.IdentifierType]string{vex.PURL: f.Package.PURL}}
		if product := products[f.Service]; product != "" {
			st.Products = []vex.Product{{
				Component:     vex.Component{ID: product, Identifiers: map[vex.IdentifierType]string{vex.PURL: product}},
				Subcomponents: []vex.Subcomponent{{Component: pkg}},
			}}
		} else {
			st.Products = []vex.Product{{Component: pkg}}
		}
		switch a.VEX.Status {
		case assess.StatusNotAffected:
			st.Justification = vex.Justification(a.VEX.Justification)
			st.ImpactStatement = a.VEX.Statement
		case assess.StatusAffected:
			st.ActionStatement = a.VEX.Statement
		default:
			st.StatusNotes = a.VEX.Statement
		}
		doc.Statements = append(doc.Statements, st)
	}
	id, err := doc.GenerateCanonicalID()
	if err != nil {
		return err
	}
	doc.ID = id
	return doc.ToJSON(w)
}
