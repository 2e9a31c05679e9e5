package telemetry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/evidentsec/evident/internal/attribution"
)

// Folded stacks ("collapsed" stacks, Brendan Gregg's format): one stack a
// line, root first, frames separated by ';', then a space and the
// sample count. They come from py-spy (--format raw), austin,
// async-profiler (-o collapsed), perf script through stackcollapse-perf,
// and Pyroscope's /ingest (format=folded, and format=lines: a stack a line
// without a count). Each tool writes frames its own way; parseFoldedFrame
// reads them into the Function and File that pprof would carry:
//
//   - py-spy: "handle (app/views.py:42)": function, then file and line;
//   - austin 3: "/usr/lib/python3/dist-packages/yaml/__init__.py:load:79"
//     ("<frozen runpy>:_run_code:88" for frozen modules), after a process
//     "P<pid>" and a thread "T<tid>" frame that are dropped;
//     austin 2 wrote "load (/path/yaml/__init__.py)" then a line frame "L79";
//   - async-profiler: "org/yaml/snakeyaml/Yaml.load_[j]", the class's
//     internal name and the method, with a frame type suffix _[j] (JIT),
//     _[i] (inlined), _[k] (kernel), _[0] (interpreted), _[1] (C1) that is
//     dropped;
//   - perf with perf-map-agent: "Lorg/yaml/snakeyaml/Yaml;::load";
//   - native frames, bare ("__memcpy_avx2") or with their object
//     ("libc.so.6`__memcpy_avx2").

// maxFoldedLine bounds one line of folded stacks.
const maxFoldedLine = 1 << 20

// DecodeFolded decodes folded stacks (gzipped or raw) into one profile of
// sample counts. When counted is false each line is one sample without a
// count (Pyroscope's format=lines). A malformed line is dropped and
// reported; the others are kept.
func DecodeFolded(data []byte, source string, counted bool) ([]*ProfileBatch, error) {
	return Limits{}.DecodeFolded(data, source, counted)
}

// DecodeFolded is DecodeFolded within l: a profile over them is refused
// with an error naming the limit that matches ErrTooLarge; deeper stacks
// are cut to their leaf end.
func (l Limits) DecodeFolded(data []byte, source string, counted bool) ([]*ProfileBatch, error) {
	raw, err := maybeGunzip(data, source)
	if err != nil {
		return nil, err
	}
	b := newStackBuilder(source, l)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, maxFoldedLine)
	var frames []attribution.Frame
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		stack, n := text, int64(1)
		if counted {
			i := strings.LastIndexAny(text, " \t")
			if i < 0 {
				b.errs.addf(errors.New("no sample count after the stack"), "line %d", line)
				continue
			}
			n, err = strconv.ParseInt(text[i+1:], 10, 64)
			if err != nil || n < 0 {
				b.errs.addf(fmt.Errorf("sample count %q is not a count", text[i+1:]), "line %d", line)
				continue
			}
			stack = strings.TrimSpace(text[:i])
		}
		if n == 0 {
			continue
		}
		frames = parseFoldedStack(stack, frames[:0])
		if len(frames) == 0 {
			b.errs.addf(errors.New("no frames"), "line %d", line)
			continue
		}
		if err := b.add("samples", frames, n, spanLabels{}); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("decode folded %s: %w: %w", source, ErrMalformed, err)
	}
	return b.batches(), b.errs.err()
}

// parseFoldedStack appends the frames of a stack, leaf first.
func parseFoldedStack(stack string, out []attribution.Frame) []attribution.Frame {
	parts := strings.Split(stack, ";")
	for i := len(parts) - 1; i >= 0; i-- {
		p := strings.TrimSpace(parts[i])
		if strings.HasPrefix(p, "::") && i > 0 {
			// perf-map-agent's "Lpkg/Class;::method" holds the separator.
			i--
			p = strings.TrimSpace(parts[i]) + ";" + p
		}
		if p == "" || isAustinMarker(p) {
			continue
		}
		out = append(out, parseFoldedFrame(p))
	}
	return out
}

// isAustinMarker reports austin's process ("P4242"), thread ("T0:7f3a")
// and line ("L79") frames, which are not functions.
func isAustinMarker(p string) bool {
	if len(p) < 2 || (p[0] != 'P' && p[0] != 'T' && p[0] != 'L') {
		return false
	}
	for _, c := range p[1:] {
		if (c < '0' || c > '9') && (p[0] != 'T' || !strings.ContainsRune("abcdefABCDEF:x", c)) {
			return false
		}
	}
	return true
}

// parseFoldedFrame reads one frame in the syntax of the tool that wrote it.
func parseFoldedFrame(p string) attribution.Frame {
	// py-spy and austin 2: "func (file:line)" or "func (file)".
	if strings.HasSuffix(p, ")") {
		if i := strings.LastIndex(p, " ("); i > 0 {
			file := p[i+2 : len(p)-1]
			if j := strings.LastIndexByte(file, ':'); j > 0 && isDigits(file[j+1:]) {
				file = file[:j]
			}
			return attribution.Frame{Function: p[:i], File: file}
		}
	}
	// austin 3 on frozen modules: "<frozen importlib._bootstrap>:func:line".
	if strings.HasPrefix(p, "<frozen ") {
		if i := strings.Index(p, ">:"); i > 0 {
			rest := p[i+2:]
			if j := strings.LastIndexByte(rest, ':'); j > 0 && isDigits(rest[j+1:]) {
				rest = rest[:j]
			}
			return attribution.Frame{Function: rest, File: p[:i+1]}
		}
	}
	// austin 3: "file.py:func:line".
	if i := strings.Index(p, ".py:"); i > 0 {
		rest := p[i+len(".py:"):]
		if j := strings.LastIndexByte(rest, ':'); j > 0 && isDigits(rest[j+1:]) {
			rest = rest[:j]
		}
		return attribution.Frame{Function: rest, File: p[:i+len(".py")]}
	}
	// async-profiler's frame type suffix.
	if len(p) > 4 && strings.HasSuffix(p, "]") && p[len(p)-4:len(p)-2] == "_[" {
		p = p[:len(p)-4]
	}
	// perf-map-agent's Java frames: "Lpkg/Class;::method".
	if cls, method, ok := strings.Cut(p, ";::"); ok {
		return attribution.Frame{Function: strings.TrimPrefix(cls, "L") + "." + method}
	}
	// Native frames with their object: "libc.so.6`memcpy".
	if obj, fn, ok := strings.Cut(p, "`"); ok && fn != "" {
		return attribution.Frame{Function: fn, File: obj}
	}
	return attribution.Frame{Function: p}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
