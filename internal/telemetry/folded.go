package telemetry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

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
//     austin 1 and 2 wrote "load (/path/yaml/__init__.py)" then a line
//     frame "L79", after "Thread <id>" (1) or "P<pid>;T<tid>" (2);
//   - async-profiler: "org/yaml/snakeyaml/Yaml.load_[j]", the class's
//     internal name and the method, with a frame type suffix _[j] (JIT),
//     _[i] (inlined), _[k] (kernel), _[0] (interpreted), _[1] (C1) that is
//     dropped;
//   - perf with perf-map-agent: "Lorg/yaml/snakeyaml/Yaml;::load";
//   - native frames, bare ("__memcpy_avx2") or with their object
//     ("libc.so.6`__memcpy_avx2").
//
// austin's lines are not counts but one sample each, with what it
// measured: the time since the thread's last sample in microseconds, or
// in memory mode the bytes allocated. From austin 2 on, "# key: value"
// lines say how: "# austin: 3.7.0", "# mode: cpu" (--sleepless; also
// wall, memory, full, whose metric is "time,idle,memory"), "# interval:
// 1000" (microseconds) and, at the end, "# duration: 30125000"
// (microseconds). austin 1 wrote none of them, and its full mode three
// space-separated metrics.

// austinMagic begins the output of austin 2 and later.
const austinMagic = "# austin: "

// maxFoldedLine bounds one line of folded stacks.
const maxFoldedLine = 1 << 20

// DecodeFolded decodes folded stacks (gzipped or raw) into one profile of
// sample counts. When counted is false each line is one sample without a
// count (Pyroscope's format=lines). A malformed line is dropped and
// reported; the others are kept.
//
// austin's output gives a profile of its samples' time in nanoseconds
// ("cpu" in its cpu mode, "wall" otherwise) or of their bytes ("memory"),
// with austin's interval as the period, and lasting its duration. Folded
// stacks carry no start time: the batches start at the zero time, and the
// caller places them (the file's modification time, the request's
// from/until).
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
	var meta austinMeta
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if text[0] == '#' {
			if err := meta.read(text); err != nil {
				b.errs.addf(err, "line %d", line)
			}
			continue
		}
		stack, metric := text, "1"
		if counted {
			i := strings.LastIndexAny(text, " \t")
			if i < 0 {
				b.errs.addf(errors.New("no sample count after the stack"), "line %d", line)
				continue
			}
			stack, metric = strings.TrimSpace(text[:i]), text[i+1:]
		}
		austin := counted && (meta.austin || isAustinStack(stack))
		kind, n, value := countOf("samples"), int64(0), int64(0)
		if austin {
			if !meta.austin {
				stack, metric = austin1Metrics(stack, metric)
			}
			if kind, value, err = meta.sample(metric); err != nil {
				b.errs.addf(fmt.Errorf("austin metric %q is not %s", metric, meta.unit()), "line %d", line)
				continue
			}
			n = 1
		} else if n, err = strconv.ParseInt(metric, 10, 64); err != nil || n < 0 {
			b.errs.addf(fmt.Errorf("sample count %q is not a count", metric), "line %d", line)
			continue
		} else {
			value = n
		}
		if n == 0 {
			continue
		}
		frames = parseFoldedStack(stack, frames[:0])
		if len(frames) == 0 && !austin {
			// austin samples a thread outside any Python code too.
			b.errs.addf(errors.New("no frames"), "line %d", line)
			continue
		}
		if err := b.add(kind, frames, n, value, spanLabels{}); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("decode folded %s: %w: %w", source, ErrMalformed, err)
	}
	out := b.batches()
	for _, bt := range out {
		bt.Duration = time.Duration(meta.duration) * time.Microsecond
	}
	return out, b.errs.err()
}

// austinMeta is what austin's "# key: value" lines said so far.
type austinMeta struct {
	austin             bool   // a "# austin: <version>" line
	mode               string // cpu, wall, memory or full; "" before austin 2
	interval, duration int64  // microseconds
}

// read reads a comment line; only austin's are metadata.
func (m *austinMeta) read(text string) error {
	key, value, ok := strings.Cut(strings.TrimSpace(text[1:]), ":")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if ok && key == "austin" {
		m.austin = true
		return nil
	}
	if !m.austin {
		return nil
	}
	switch key {
	case "mode":
		switch value {
		case "cpu", "wall", "memory", "full":
			m.mode = value
			return nil
		}
		return fmt.Errorf("austin mode %q is none of cpu, wall, memory, full", value)
	case "interval", "duration":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/int64(time.Microsecond) {
			return fmt.Errorf("austin %s %q is not microseconds", key, value)
		}
		if key == "interval" {
			m.interval = n
		} else {
			m.duration = n
		}
	}
	return nil
}

// unit names what the metric of a sample is, for errors.
func (m *austinMeta) unit() string {
	if m.mode == "memory" {
		return "bytes"
	}
	return "microseconds"
}

// sample reads the metric of one austin sample: microseconds, or bytes in
// memory mode, and in full mode "time,idle,memory".
func (m *austinMeta) sample(metric string) (sampleKind, int64, error) {
	first, _, _ := strings.Cut(metric, ",")
	v, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return sampleKind{}, 0, err
	}
	if m.mode == "memory" {
		// Freed memory is a negative metric: the code ran all the same.
		return sampleKind{Type: "memory", Unit: "bytes"}, max(v, 0), nil
	}
	if v < 0 || v > math.MaxInt64/int64(time.Microsecond) {
		return sampleKind{}, 0, errors.New("out of range")
	}
	k := sampleKind{Type: "wall", Unit: "nanoseconds", Period: m.interval * int64(time.Microsecond)}
	if m.mode == "cpu" {
		k.Type = "cpu"
	}
	return k, v * int64(time.Microsecond), nil
}

// isAustinStack reports a stack of austin's without its metadata lines:
// austin 1 began each with "Thread <id>", austin 2 and 3 with "P<pid>".
func isAustinStack(stack string) bool {
	first, _, _ := strings.Cut(stack, ";")
	pid, ok := strings.CutPrefix(first, "P")
	return strings.HasPrefix(first, "Thread ") || (ok && isDigits(pid))
}

// austin1Metrics takes the time, the first of austin 1's full-mode
// metrics "time alloc free", off the end of the stack.
func austin1Metrics(stack, metric string) (string, string) {
	for range 2 {
		i := strings.LastIndexByte(stack, ' ')
		if i < 0 || !isDigits(stack[i+1:]) {
			break
		}
		stack, metric = strings.TrimSpace(stack[:i]), stack[i+1:]
	}
	return stack, metric
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
		if p == "" || isAustinMarker(p) || isAustinSpecial(p) {
			continue
		}
		out = append(out, parseFoldedFrame(p))
	}
	return out
}

// isAustinMarker reports austin's process ("P4242"), thread ("T0:7f3a",
// austin 1's "Thread 7f3a08c4e740") and line ("L79") frames, which are
// not functions.
func isAustinMarker(p string) bool {
	if id, ok := strings.CutPrefix(p, "Thread "); ok {
		p = "T" + id
	}
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

// isAustinSpecial reports austin's frames that stand for no code, such as
// ":INVALID:" for a stack it could not read and ":GC:" for the garbage
// collector.
func isAustinSpecial(p string) bool {
	if len(p) < 3 || p[0] != ':' || p[len(p)-1] != ':' {
		return false
	}
	for _, c := range p[1 : len(p)-1] {
		if c < 'A' || c > 'Z' {
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
