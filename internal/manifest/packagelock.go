package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ParsePackageLock reads an npm package-lock.json: the "node_modules/..."
// keys of "packages" (lockfile versions 2 and 3), or, in a version 1
// lock file, the keys of "dependencies" and of the "dependencies" nested
// in them (a package installed below another). The line is the line of
// the key. A package installed at several places is listed once per
// place. An alias ("sw": "npm:string-width@^4") is listed under the
// package it installs, which findings name, as npm writes it: the
// entry's "name" (versions 2, 3) or the "npm:name@version" version (1).
func ParsePackageLock(data []byte) ([]Requirement, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	lc := lineCounter{data: data}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("parse package-lock.json: %w", err)
	}
	var packages, dependencies []Requirement
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return nil, fmt.Errorf("parse package-lock.json: %w", err)
		}
		switch key {
		case "packages":
			packages, err = lockEntries(dec, &lc, false, func(k string) string {
				i := strings.LastIndex(k, "node_modules/")
				if i < 0 {
					return "" // the root package or a workspace's source
				}
				return k[i+len("node_modules/"):]
			})
		case "dependencies":
			dependencies, err = lockEntries(dec, &lc, true, func(k string) string { return k })
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return nil, fmt.Errorf("parse package-lock.json: %s: %w", key, err)
		}
	}
	if packages != nil {
		return packages, nil
	}
	return dependencies, nil
}

// lockEntries reads an object of key → {"version": ...} entries, named
// by nameOf(key) ("" skips the entry) unless the entry names itself;
// nested reads the entries' own "dependencies" too (lockfile version 1).
func lockEntries(dec *json.Decoder, lc *lineCounter, nested bool, nameOf func(string) string) ([]Requirement, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	out := []Requirement{}
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return nil, err
		}
		r := Requirement{Name: nameOf(key), Line: lc.lineAt(int(dec.InputOffset()))}
		var inner []Requirement
		if err := expectDelim(dec, '{'); err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		for dec.More() {
			field, err := stringToken(dec)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", key, err)
			}
			switch {
			case field == "version":
				err = dec.Decode(&r.Version)
			case field == "name" && !nested:
				var name string
				if err = dec.Decode(&name); err == nil && name != "" && r.Name != "" {
					r.Name = name
				}
			case field == "dependencies" && nested:
				inner, err = lockEntries(dec, lc, true, nameOf)
			default:
				var skip json.RawMessage
				err = dec.Decode(&skip)
			}
			if err != nil {
				return nil, fmt.Errorf("%q: %s: %w", key, field, err)
			}
		}
		if _, err := dec.Token(); err != nil { // the entry's closing brace
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		if alias, ok := strings.CutPrefix(r.Version, "npm:"); ok && nested {
			// "npm:string-width@4.2.0"; a scoped name starts with @.
			if i := strings.LastIndex(alias, "@"); i > 0 {
				r.Name, r.Version = alias[:i], alias[i+1:]
			}
		}
		if r.Name != "" {
			out = append(out, r)
		}
		out = append(out, inner...)
	}
	_, err := dec.Token() // the closing brace
	return out, err
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}

func stringToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", errors.New("want an object key")
	}
	return s, nil
}

// lineCounter turns byte offsets into 1-based lines. Offsets must not
// decrease between calls, so that counting stays linear in the file.
type lineCounter struct {
	data []byte
	off  int
	line int
}

func (c *lineCounter) lineAt(off int) int {
	off = min(off, len(c.data))
	if off > c.off {
		c.line += bytes.Count(c.data[c.off:off], []byte{'\n'})
		c.off = off
	}
	return c.line + 1
}
