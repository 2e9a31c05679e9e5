package manifest

import (
	"fmt"

	"golang.org/x/mod/modfile"
)

// ParseGoMod reads a go.mod file: its require lines (single or in a
// block), its replace lines and, as "stdlib", its toolchain directive
// (or, without one, its go directive), since that selects the standard
// library a stdlib vulnerability is in.
//
// A replace line is listed before the require lines and under both the
// module it replaces and the module it substitutes (binaries name the
// latter), with the version it substitutes: that is where the version
// that was built comes from.
func ParseGoMod(data []byte) ([]Requirement, error) {
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return nil, fmt.Errorf("parse go.mod: %w", err)
	}
	var out []Requirement
	switch {
	case f.Toolchain != nil:
		out = append(out, Requirement{Name: "stdlib", Version: f.Toolchain.Name, Line: f.Toolchain.Syntax.Start.Line})
	case f.Go != nil:
		out = append(out, Requirement{Name: "stdlib", Version: f.Go.Version, Line: f.Go.Syntax.Start.Line})
	}
	for _, r := range f.Replace {
		line := r.Syntax.Start.Line
		out = append(out, Requirement{Name: r.Old.Path, Version: r.New.Version, Line: line})
		// A replacement by a directory (no version) has no module path
		// a finding could name.
		if r.New.Path != r.Old.Path && r.New.Version != "" {
			out = append(out, Requirement{Name: r.New.Path, Version: r.New.Version, Line: line})
		}
	}
	for _, r := range f.Require {
		out = append(out, Requirement{Name: r.Mod.Path, Version: r.Mod.Version, Line: r.Syntax.Start.Line})
	}
	return out, nil
}
