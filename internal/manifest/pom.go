package manifest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParsePOM reads a Maven pom.xml: every <dependency> (of <dependencies>,
// <dependencyManagement>, a profile or a plugin) as groupId:artifactId,
// at the line of its <artifactId>. A version written as a property
// (${...}) is kept as written; evident does not resolve properties or
// parent POMs.
func ParsePOM(data []byte) ([]Requirement, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	// POMs declare encodings such as ISO-8859-1; the names and versions
	// evident reads are ASCII, so the bytes are read as they are.
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var (
		out   []Requirement
		stack []string
		dep   *struct {
			group, artifact, version string
			line                     int
		}
		text strings.Builder
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse pom.xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			text.Reset()
			switch {
			case t.Name.Local == "dependency":
				dep = &struct {
					group, artifact, version string
					line                     int
				}{}
			case dep != nil && t.Name.Local == "artifactId" && parentIs(stack, "dependency"):
				dep.line, _ = dec.InputPos()
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			if dep != nil && parentIs(stack, "dependency") {
				switch t.Name.Local {
				case "groupId":
					dep.group = strings.TrimSpace(text.String())
				case "artifactId":
					dep.artifact = strings.TrimSpace(text.String())
				case "version":
					dep.version = strings.TrimSpace(text.String())
				}
			}
			if t.Name.Local == "dependency" && dep != nil {
				if dep.group != "" && dep.artifact != "" {
					out = append(out, Requirement{Name: dep.group + ":" + dep.artifact, Version: dep.version, Line: dep.line})
				}
				dep = nil
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return nil, errors.New("parse pom.xml: unexpected end of file")
	}
	return out, nil
}

// parentIs reports whether the element on top of stack is a direct child
// of an element named parent (an <artifactId> of the <dependency>, not of
// one of its <exclusions>).
func parentIs(stack []string, parent string) bool {
	return len(stack) >= 2 && stack[len(stack)-2] == parent
}
