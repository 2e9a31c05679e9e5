package findings

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
)

// ParseGoBinary reads the build information of a Go executable (ELF, PE,
// Mach-O, XCOFF or Wasm) from r and looks each module in it up in m: the
// main module (unless it is a development build, with no version), every
// dependency, and the standard library as module "stdlib" at the Go
// version that built it. A replaced module is matched as its replacement,
// as govulncheck does. Each record that affects a module of the build's
// platform (GOOS/GOARCH) is a finding with Static required: the module is
// linked in, but whether its vulnerable code is cannot be told from the
// build information.
//
// A module that cannot be matched (replaced by a local directory, so with
// no version) is reported as a *RecordError naming it, and skipped. An
// input with no Go build information is one error wrapping ErrWrongFormat.
func ParseGoBinary(r io.ReaderAt, name string, m Matcher) ([]Finding, []error) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: no Go build information: %v: %w", name, err, ErrWrongFormat)}
	}
	return goBinaryFindings(bi, name, m)
}

// goBinaryFindings matches the modules of a build; its main package is
// the sources' Artifact.
func goBinaryFindings(bi *buildinfo.BuildInfo, name string, m Matcher) ([]Finding, []error) {
	comps, errs := goBuildComponents(bi, name)
	fs, merrs := matchComponents(comps, m, string(FormatGoBinary), name)
	return withArtifact(fs, bi.Path), append(errs, merrs...)
}

// goBuildComponents lists the modules of a build.
func goBuildComponents(bi *buildinfo.BuildInfo, name string) ([]Component, []error) {
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	var (
		out  []Component
		errs []error
	)
	add := func(ref, module, version string) {
		pkg, err := newPackage(osv.EcosystemGo, module, version, "")
		if err != nil {
			errs = append(errs, recordErr(name, ref, "%v", err))
			return
		}
		out = append(out, Component{Ref: ref, Package: pkg, GOOS: goos, GOARCH: goarch})
	}
	// A main module built from a work tree without version control, or
	// with go run, has version "(devel)": it is the application itself,
	// not a published version that advisories could name.
	if v := bi.Main.Version; bi.Main.Path != "" && v != "" && v != goDevel {
		add(bi.Main.Path, bi.Main.Path, v)
	}
	for _, d := range bi.Deps {
		mod := effectiveModule(d)
		// A directory replacement is written "=> ./dir (devel)".
		if mod.Version == "" || mod.Version == goDevel {
			errs = append(errs, recordErr(name, d.Path, "replaced by directory %s, which has no version to match", mod.Path))
			continue
		}
		add(d.Path, mod.Path, mod.Version)
	}
	if v, err := goToolchainVersion(bi.GoVersion); err != nil {
		errs = append(errs, recordErr(name, goStdlib, "%v", err))
	} else {
		add(goStdlib, goStdlib, v)
	}
	return out, errs
}

// effectiveModule is the module that was built for a dependency: its
// replacement, when it has one.
func effectiveModule(d *debug.Module) *debug.Module {
	if d.Replace != nil {
		return d.Replace
	}
	return d
}

// goToolchainVersion extracts the release of a Go version string as
// runtime.Version writes it: "go1.26.8", "go1.26.8 X:boringcrypto",
// "go1.27rc1". Development toolchains ("devel go1.27-abcdef") have no
// release to match.
func goToolchainVersion(s string) (string, error) {
	v, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	if !strings.HasPrefix(v, "go1") {
		return "", fmt.Errorf("go version %q is not a release", s)
	}
	return v, nil
}
