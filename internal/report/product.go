package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/telemetry"
)

// product is what a VEX statement says a vulnerable package is deployed
// in: scanners match a statement's product against the artifact they
// scan and its subcomponent against the package they found, so a
// statement about one service cannot suppress a finding in another.
type product struct {
	// PURL is its package URL: pkg:oci/<name>@sha256:… for an image,
	// pkg:generic/<service.namespace>/<service.name> for a service known
	// by name only, or what Options.Products gives. Empty when no product
	// can be named.
	PURL string
	// Name is how people know it: the image or service name.
	Name string
	// Container is true for a container image.
	Container bool
}

// productsOf returns the products a service's findings are stated for:
// the one Options.Products names, else the container images its
// telemetry named (resource container.image.name with oci.manifest.digest,
// container.image.repo_digests or container.image.tags), else its
// service.name and service.namespace (each of them, for services of one
// name in several namespaces).
// A finding with no service has none.
func productsOf(r *Result, configured map[string]string, service string) []product {
	if p := configured[service]; p != "" {
		return []product{{PURL: p, Name: service, Container: strings.HasPrefix(p, "pkg:oci/")}}
	}
	if service == "" {
		return nil
	}
	namespaces := []string{""}
	if r.Snapshot != nil {
		if s := r.Snapshot.Service(service); s != nil {
			// The services of one name in several namespaces, merged,
			// are each a product: under the first alone the others
			// would have no statement (and none is not_affected, since
			// assess cannot tell whose the telemetry is).
			namespaces = []string{s.Namespace}
			if len(s.Namespaces) > 0 {
				namespaces = s.Namespaces
			}
			var out []product
			for _, img := range s.Images {
				for _, purl := range imagePURLs(img) {
					if !slices.ContainsFunc(out, func(p product) bool { return p.PURL == purl }) {
						out = append(out, product{PURL: purl, Name: cmp.Or(img.Name, service), Container: true})
					}
				}
			}
			if len(out) > 0 {
				return out
			}
		}
	}
	var out []product
	for _, ns := range namespaces {
		out = append(out, product{PURL: servicePURL(ns, service), Name: service})
	}
	return out
}

// servicePURL is the package URL of a service that telemetry knows by
// name only: pkg:generic/<service.namespace>/<service.name>, without a
// version so that it matches every version of it.
func servicePURL(namespace, service string) string {
	return packageurl.NewPackageURL(packageurl.TypeGeneric, namespace, service, "", nil, "").ToString()
}

// imagePURLs returns the package URLs of a container image: for each
// digest it is known by (oci.manifest.digest, and the repo digests the
// runtime reports, which for a multi-platform image are the index's),
// pkg:oci/<name>@sha256:…, which matches the image whatever the registry
// it was pulled from (scanners spell repository_url differently, and a
// qualifier the statement has must equal theirs); with no digest,
// pkg:oci/<name>?tag=<tag> for each tag.
func imagePURLs(img telemetry.Image) []string {
	var out []string
	add := func(name, digest string) {
		if name = imageBase(name); name != "" && digest != "" {
			purl := packageurl.NewPackageURL(packageurl.TypeOCI, "", name, digest, nil, "").ToString()
			if !slices.Contains(out, purl) {
				out = append(out, purl)
			}
		}
	}
	name := img.Name
	if len(img.RepoDigests) > 0 {
		repo, _, _ := strings.Cut(img.RepoDigests[0], "@")
		name = cmp.Or(name, repo)
	}
	add(name, img.Digest)
	for _, rd := range img.RepoDigests {
		repo, digest, _ := strings.Cut(rd, "@")
		add(repo, digest)
	}
	if len(out) > 0 || imageBase(name) == "" {
		return out
	}
	for _, tag := range img.Tags {
		out = append(out, packageurl.NewPackageURL(packageurl.TypeOCI, "", imageBase(name), "", packageurl.QualifiersFromMap(map[string]string{"tag": tag}), "").ToString())
	}
	return out
}

// imageBase is the last path segment of an image reference, without tag
// or digest, in lower case: the name of its pkg:oci package URL.
func imageBase(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.Index(ref, ":"); i >= 0 {
		ref = ref[:i]
	}
	return strings.ToLower(ref)
}

// caution ranks VEX statuses: when several services run one product, the
// product gets the most cautious status of theirs, so that no product is
// not_affected unless every instance of it earned it.
var caution = map[string]int{assess.StatusNotAffected: 1, assess.StatusUnderInvestigation: 2, assess.StatusAffected: 3}

// instance is one vulnerable package in one product, with every
// assessment that bears on it.
type instance struct {
	Vulnerability findings.Vulnerability // aliases of all its findings
	Product       product
	Package       findings.Package
	// Assessments are in priority order.
	Assessments []assess.Assessment
	// Status is the most cautious VEX status of the assessments;
	// never not_affected without a product.
	Status string
}

// noProduct is what a statement says when evident cannot name the
// product the package runs in.
const noProduct = "evident cannot name the product this package runs in (the finding names no service), so the statement covers the package wherever it is and is never not_affected"

// vexInstances groups the assessments by vulnerability, product and
// package, ordered by vulnerability, product and package URL. warn, if
// not nil, is told of every instance without a product.
func vexInstances(r *Result, configured map[string]string, warn func(error)) []*instance {
	type key struct{ vuln, product, pkg string }
	byKey := map[key]*instance{}
	var out []*instance
	for _, a := range r.Assessments {
		f := a.Finding
		products := productsOf(r, configured, f.Service)
		if len(products) == 0 {
			products = []product{{}}
		}
		for _, p := range products {
			k := key{f.Vulnerability.ID, p.PURL, f.Package.PURL}
			in := byKey[k]
			if in == nil {
				in = &instance{Vulnerability: findings.Vulnerability{ID: f.Vulnerability.ID}, Product: p, Package: f.Package}
				byKey[k] = in
				out = append(out, in)
			}
			in.Assessments = append(in.Assessments, a)
			for _, alias := range f.Vulnerability.Aliases {
				if !slices.Contains(in.Vulnerability.Aliases, alias) {
					in.Vulnerability.Aliases = append(in.Vulnerability.Aliases, alias)
				}
			}
			if caution[a.VEX.Status] > caution[in.Status] {
				in.Status = a.VEX.Status
			}
		}
	}
	for _, in := range out {
		slices.Sort(in.Vulnerability.Aliases)
		if in.Product.PURL != "" {
			continue
		}
		if in.Status == assess.StatusNotAffected {
			in.Status = assess.StatusUnderInvestigation
		}
		if warn != nil {
			warn(fmt.Errorf("VEX for %s in %s: no product can be named (the finding has no service), so it is stated for the package everywhere and never as not_affected", in.Vulnerability.ID, in.Package.PURL))
		}
	}
	slices.SortFunc(out, func(a, b *instance) int {
		return cmp.Or(cmp.Compare(a.Vulnerability.ID, b.Vulnerability.ID), cmp.Compare(a.Product.PURL, b.Product.PURL), cmp.Compare(a.Package.PURL, b.Package.PURL))
	})
	return out
}

// statement is the reason for the instance's status: the distinct VEX
// statements of the assessments that hold it, joined.
func (in *instance) statement() string {
	var parts []string
	for _, a := range in.Assessments {
		if (a.VEX.Status == in.Status || in.Product.PURL == "") && a.VEX.Statement != "" && !slices.Contains(parts, a.VEX.Statement) {
			parts = append(parts, a.VEX.Statement)
		}
	}
	s := strings.Join(parts, "; ")
	if in.Product.PURL == "" {
		s = noProduct + ": " + s
	}
	return s
}

// justification is the not_affected justification of the instance.
func (in *instance) justification() string {
	for _, a := range in.Assessments {
		if a.VEX.Status == assess.StatusNotAffected && a.VEX.Justification != "" {
			return a.VEX.Justification
		}
	}
	return ""
}
