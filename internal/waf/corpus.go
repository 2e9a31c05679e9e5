package waf

import (
	"github.com/evidentsec/evident/internal/knowledge"

	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// builtinCorpus is the exploit corpus shipped with evident, one file per
// class (exploits/<class>.yaml). It is embedded, not test data, because
// `evident waf generate` validates every patch against it.
//
//go:embed exploits/*.yaml
var builtinCorpus embed.FS

// ErrCorpus means an exploit corpus file or sample is malformed.
var ErrCorpus = errors.New("malformed exploit corpus")

// Placements: where a sample's payload goes in the request.
const (
	InQuery  = "query"  // a query parameter of the endpoint
	InPath   = "path"   // the first path parameter of the route
	InBody   = "body"   // the request body: a form field, or the whole body when ContentType is set
	InHeader = "header" // the header named by Header
	InNone   = "none"   // only Headers and Body as given (protocol attacks)
)

// Sample is one exploit of a class, with the public source it comes
// from: the same request as a variant of the exploit knowledge, so a
// vulnerability's variants and a class's corpus are sent alike.
type Sample = knowledge.Variant

// Corpus is exploit samples by class.
type Corpus map[Class][]Sample

type corpusFile struct {
	Class   Class       `yaml:"class"`
	Samples []yaml.Node `yaml:"samples"`
}

// ParseCorpus reads one corpus file. Malformed samples are reported in the
// error (naming the file and the sample) and left out; the others are
// returned.
func ParseCorpus(data []byte, name string) (Class, []Sample, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f corpusFile
	if err := dec.Decode(&f); err != nil {
		return "", nil, fmt.Errorf("%w: %s: %v", ErrCorpus, name, err)
	}
	if !slices.Contains(Classes, f.Class) {
		return "", nil, fmt.Errorf("%w: %s: unknown class %q", ErrCorpus, name, f.Class)
	}
	var out []Sample
	var errs []error
	for i := range f.Samples {
		s, err := parseSample(&f.Samples[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: sample %d (line %d): %v", ErrCorpus, name, i, f.Samples[i].Line, err))
			continue
		}
		out = append(out, s)
	}
	return f.Class, out, errors.Join(errs...)
}

func parseSample(n *yaml.Node) (Sample, error) {
	// Re-encode the node so that this sample alone is decoded strictly:
	// an unknown key fails the sample, not the file.
	raw, err := yaml.Marshal(n)
	if err != nil {
		return Sample{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var s Sample
	if err := dec.Decode(&s); err != nil {
		return Sample{}, err
	}
	if s.Name == "" {
		return s, errors.New("no name")
	}
	u, err := url.Parse(s.Source)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return s, fmt.Errorf("source %q is not an http(s) URL", s.Source)
	}
	switch s.In {
	case InQuery, InPath, InBody:
	case InHeader:
		if s.Header == "" {
			return s, errors.New("in: header without a header name")
		}
	case InNone:
		if len(s.Headers) == 0 && s.Payload == "" {
			return s, errors.New("in: none without headers or payload")
		}
	default:
		return s, fmt.Errorf("in %q: want query, path, body, header or none", s.In)
	}
	if s.Payload == "" && s.In != InNone {
		return s, errors.New("empty payload")
	}
	if err := s.CheckBase64(); err != nil {
		return s, err
	}
	if s.Encoded {
		if _, err := url.PathUnescape(s.Payload); err != nil {
			return s, fmt.Errorf("encoded payload: %v", err)
		}
	}
	return s, nil
}

// ErrNoCorpus means a corpus directory cannot be read or holds no
// corpus file: every patch built from a class template would then be
// replayed against no exploit at all.
var ErrNoCorpus = errors.New("no exploit corpus")

// LoadCorpus reads every *.yaml file of fsys (nil: the built-in corpus).
// Files and samples that cannot be read are reported in the error and the
// rest is returned. An fsys that cannot be read, or that holds no *.yaml
// file, is an error wrapping ErrNoCorpus, with nothing returned: fs.Glob
// finds nothing in a directory that does not exist and says nothing of it.
func LoadCorpus(fsys fs.FS) (Corpus, error) {
	if fsys == nil {
		sub, err := fs.Sub(builtinCorpus, "exploits")
		if err != nil {
			return nil, err
		}
		fsys = sub
	}
	if _, err := fs.ReadDir(fsys, "."); err != nil {
		// The path of an fs.FS is ".", which names nothing to the
		// caller, who knows the directory.
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		return nil, fmt.Errorf("%w: %w", ErrNoCorpus, err)
	}
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no <class>.yaml file", ErrNoCorpus)
	}
	c := Corpus{}
	var errs []error
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("load exploit corpus: %w", err))
			continue
		}
		class, samples, err := ParseCorpus(data, name)
		if err != nil {
			errs = append(errs, err)
		}
		if class != "" && strings.TrimSuffix(path.Base(name), ".yaml") != string(class) {
			errs = append(errs, fmt.Errorf("%w: %s: holds class %q, want a file named %s.yaml", ErrCorpus, name, class, class))
		}
		c[class] = append(c[class], samples...)
	}
	delete(c, "")
	return c, errors.Join(errs...)
}

// instantiate builds the request that delivers s to an endpoint, on the
// model of a legitimate request to it when traffic has one.
func instantiate(s Sample, ep Endpoint, et *EndpointTraffic) Request {
	target := examplePath(ep.Route, "1")
	if ep.Route == "" {
		target = "/"
	}
	param := s.Param
	if et != nil {
		if len(et.Replay) > 0 {
			target = et.Replay[0].Target
		}
		if names := sortedKeys(et.Params); param == "" && len(names) > 0 {
			param = names[0]
		}
	}
	if param == "" {
		param = "q"
	}
	enc := func(v string) string {
		if s.Encoded {
			return v
		}
		return url.QueryEscape(v)
	}
	r := Request{Method: ep.Method, Headers: map[string]string{"User-Agent": "evident-validate/1"}}
	for k, v := range s.Headers {
		r.Headers[k] = v
	}
	// A base64 payload was checked when the sample was loaded.
	body, _ := s.Body()
	in := s.In
	if in == InPath && !hasPlaceholder(ep.Route) {
		in = InQuery
	}
	switch in {
	case InPath:
		p := s.Payload
		if !s.Encoded {
			p = url.PathEscape(p)
		}
		target = examplePath(ep.Route, p)
	case InQuery:
		target = setQuery(target, param, enc(s.Payload))
	case InBody:
		if s.ContentType != "" {
			r.Headers["Content-Type"] = s.ContentType
			r.Body = body
		} else {
			r.Headers["Content-Type"] = "application/x-www-form-urlencoded"
			r.Body = url.QueryEscape(param) + "=" + enc(s.Payload)
		}
	case InHeader:
		r.Headers[s.Header] = s.Payload
	case InNone:
		r.Body = body
	}
	r.Target = target
	return r
}

// setQuery sets one parameter of a target's query to an encoded value,
// keeping the other parameters as they were.
func setQuery(target, param, encoded string) string {
	p, q, _ := strings.Cut(target, "?")
	var kept []string
	for _, kv := range strings.Split(q, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if kv == "" {
			continue
		}
		if name, err := url.QueryUnescape(k); err == nil && name == param {
			continue
		}
		kept = append(kept, kv)
	}
	kept = append(kept, url.QueryEscape(param)+"="+encoded)
	return p + "?" + strings.Join(kept, "&")
}

// builtinLegitimate is the legitimate corpus per format
// (legitimate/<format>.yaml): real-world inputs of the format that a patch
// built from exploit knowledge must let through.
//
//go:embed legitimate/*.yaml
var builtinLegitimate embed.FS

type legitimateFile struct {
	Format  string      `yaml:"format"`
	Samples []yaml.Node `yaml:"samples"`
}

// legitimateCorpus returns the shipped legitimate corpus by format. It is
// parsed once; the files are part of the binary, so an error is a bug that
// the package's tests catch.
var legitimateCorpus = sync.OnceValues(func() (map[string][]Sample, error) {
	names, err := fs.Glob(builtinLegitimate, "legitimate/*.yaml")
	if err != nil {
		return nil, err
	}
	out := map[string][]Sample{}
	for _, name := range names {
		data, err := fs.ReadFile(builtinLegitimate, name)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		var f legitimateFile
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("legitimate corpus %s: %w", name, err)
		}
		for i := range f.Samples {
			s, err := parseSample(&f.Samples[i])
			if err != nil {
				return nil, fmt.Errorf("legitimate corpus %s: sample %d: %w", name, i, err)
			}
			out[f.Format] = append(out[f.Format], s)
		}
	}
	return out, nil
})
