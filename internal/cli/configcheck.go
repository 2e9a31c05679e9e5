package cli

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// explainConfig turns what the strict YAML decoder said about a
// configuration file into errors a user can act on: each names the file,
// the line and the key's path, and an unknown key comes with the nearest
// known one ("evident.yml:12: serve.alerts.webhooks[0].secrte: unknown
// key (did you mean secret?)"), where the decoder names Go types. It
// walks the document doc, as parsed from the file (with its lines),
// against the type of what it decodes into, want. A document it finds
// nothing wrong with keeps the decoder's error.
func explainConfig(doc *yaml.Node, file string, want reflect.Type, decodeErr error) error {
	if len(doc.Content) == 0 {
		return fmt.Errorf("config %s: %w", file, decodeErr)
	}
	c := configChecker{file: file, keys: keyPaths(want, "", nil)}
	c.check(doc.Content[0], want, "")
	if len(c.problems) == 0 {
		return fmt.Errorf("config %s: %w", file, decodeErr)
	}
	return errors.Join(c.problems...)
}

// configChecker collects the problems of a document.
type configChecker struct {
	file string
	// keys are the paths of every key of the document's type, for a key
	// given at the wrong level.
	keys     []string
	problems []error
}

func (c *configChecker) problem(n *yaml.Node, path, format string, args ...any) {
	if path == "" {
		path = "the document"
	}
	c.problems = append(c.problems, fmt.Errorf("%s:%d: %s: %s", c.file, n.Line, path, fmt.Sprintf(format, args...)))
}

var (
	durationType      = reflect.TypeFor[time.Duration]()
	unmarshalerType   = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check checks node n, at path, against type t. Aliases are not
// followed: the decoder has already refused any that were too many.
func (c *configChecker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode || n.ShortTag() == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalType) {
		c.checkLeaf(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.problem(n, path, "want a mapping of keys, not %s", nodeNoun(n))
			return
		}
		fields := yamlFields(t)
		c.checkMapping(n, t, path, func(key, value *yaml.Node, keyPath string) {
			f, ok := fields[key.Value]
			if !ok {
				c.problem(key, keyPath, "unknown key%s", c.suggestKey(key.Value, fields))
				return
			}
			c.check(value, f, keyPath)
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.problem(n, path, "want a mapping, not %s", nodeNoun(n))
			return
		}
		c.checkMapping(n, t, path, func(key, value *yaml.Node, keyPath string) {
			c.check(key, t.Key(), keyPath)
			c.check(value, t.Elem(), keyPath)
		})
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			c.problem(n, path, "want a list, not %s", nodeNoun(n))
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Interface:
	default:
		c.checkLeaf(n, t, path)
	}
}

// checkMapping calls each for every key and value of the mapping n of
// type t, with the key's path; the mappings merged in (<<) are checked as
// t.
func (c *configChecker) checkMapping(n *yaml.Node, t reflect.Type, path string, each func(key, value *yaml.Node, keyPath string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.ShortTag() == "!!merge" {
			merged := []*yaml.Node{value}
			if value.Kind == yaml.SequenceNode {
				merged = value.Content
			}
			for _, m := range merged {
				c.check(m, t, path)
			}
			continue
		}
		keyPath := key.Value
		if path != "" {
			keyPath = path + "." + key.Value
		}
		if line, ok := seen[key.Value]; ok {
			c.problem(key, keyPath, "given twice (first on line %d)", line)
			continue
		}
		seen[key.Value] = key.Line
		each(key, value, keyPath)
	}
}

// checkLeaf decodes a scalar on its own to tell what is wrong with it.
func (c *configChecker) checkLeaf(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		c.problem(n, path, "want %s, not %s", typeNoun(t), nodeNoun(n))
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		c.problem(n, path, "%s is not %s", strconv.Quote(n.Value), typeNoun(t))
	}
}

// yamlFields maps the keys of a struct, with those of its inlined
// structs, to their types, as the decoder does.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			maps.Copy(out, yamlFields(f.Type))
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggestKey is " (did you mean KEY?)" for the known key nearest to key,
// when one is near enough to be a typo; else the key of that name
// elsewhere in the document ("did you mean reachability.min_samples?");
// else the list of the known keys.
func (c *configChecker) suggestKey(key string, known map[string]reflect.Type) string {
	names := slices.Sorted(maps.Keys(known))
	if best := nearest(key, names, func(s string) string { return s }); best != "" {
		return " (did you mean " + best + "?)"
	}
	last := func(p string) string { return p[strings.LastIndexAny(p, ".]")+1:] }
	if best := nearest(key, c.keys, last); best != "" {
		return " (did you mean " + best + "?)"
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

// nearest is the candidate whose name is nearest to key, when one is near
// enough to be a typo: within a third of its length, and two edits.
func nearest(key string, candidates []string, name func(string) string) string {
	best, bestDist := "", len(key)/3+2
	for _, c := range candidates {
		if d := editDistance(key, name(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// keyPaths appends the paths of every key of type t under prefix
// ("serve.alerts.webhooks[].secret") to out.
func keyPaths(t reflect.Type, prefix string, out []string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalType) {
			return out
		}
		fields := yamlFields(t)
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out = keyPaths(fields[k], p, append(out, p))
		}
	case reflect.Slice, reflect.Array:
		out = keyPaths(t.Elem(), prefix+"[]", out)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// typeNoun says what a value of type t is written as.
func typeNoun(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration (like 30s, 5m or 1h)"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		return "a non-negative integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return "a single value"
}

// nodeNoun says what a node is, for "want X, not Y".
func nodeNoun(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}
