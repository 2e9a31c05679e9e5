package telemetry

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/evidentsec/evident/internal/attribution"
)

// JFR (JDK Flight Recorder) recordings, as the JDK writes them
// (-XX:StartFlightRecording, jcmd JFR.dump) and as async-profiler and the
// Pyroscope Java agent send them. The format is defined by the JDK's
// reader (jdk.jfr.internal.consumer: ChunkHeader, ChunkParser,
// MetadataReader, ConstantPoolReader):
//
//   - a recording is a sequence of chunks, each self-contained: a 68-byte
//     header (magic "FLR\0", version 2.x, chunk size, offsets of the last
//     constant pool and of the metadata, start time, duration, start
//     ticks, ticks per second, features; big-endian), then events;
//     version 2 (JDK 11 and later) is read;
//   - every event is its size, its type id and its fields in the order
//     the metadata declares them; integers are LEB128 varints when the
//     features' bit 0 is set (every JDK since 11 sets it), big-endian
//     otherwise;
//   - event type 0 is the metadata: a string table and a tree of
//     elements (class, field, annotation, setting) naming every type;
//   - event type 1 is a constant pool (checkpoint): per type, id → value
//     entries that event fields marked constantPool refer to by id.
//
// Only what stacks need is kept from the pools: stack traces, methods,
// classes, packages, symbols, strings and frame types. Memory is bounded
// by one chunk's pools plus the profile being built.

// jfrMagic starts every JFR chunk.
const jfrMagic = "FLR\x00"

// jfrHeaderSize is the size of a chunk header.
const jfrHeaderSize = 68

// Event type ids fixed by the format.
const (
	jfrMetadataID     = 0
	jfrConstantPoolID = 1
)

// maxJFRNesting bounds the nesting of struct fields in a value, against
// metadata that declares a type containing itself.
const maxJFRNesting = 32

// jfrSampleType returns the sample type of the profile the samples of an
// event type go to, "" for events that are not samples.
func jfrSampleType(event string) string {
	switch event {
	case "jdk.ExecutionSample":
		return "cpu"
	case "jdk.NativeMethodSample", "profiler.WallClockSample":
		return "wall"
	}
	return ""
}

// errJFRTruncated reports data that ends inside a value.
var errJFRTruncated = errors.New("truncated")

// jfrReader reads the values of one chunk.
type jfrReader struct {
	b          []byte
	pos        int
	compressed bool
	err        error
	// budget bounds the fields visited in the chunk: fields of structs
	// without fields take no bytes, and metadata can nest such types to
	// make a small chunk take forever.
	budget int
}

func (r *jfrReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.pos = len(r.b)
}

func (r *jfrReader) byte() byte {
	if r.pos >= len(r.b) {
		r.fail(errJFRTruncated)
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *jfrReader) fixed(n int) []byte {
	if n < 0 || len(r.b)-r.pos < n {
		r.fail(errJFRTruncated)
		return nil
	}
	p := r.b[r.pos : r.pos+n]
	r.pos += n
	return p
}

// varint reads a compressed integer: LEB128, seven bits a byte, with a
// ninth byte carrying eight.
func (r *jfrReader) varint() int64 {
	var v uint64
	for i := range 8 {
		c := r.byte()
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(v)
		}
	}
	return int64(v | uint64(r.byte())<<56)
}

// long reads a long (or an int, short, char: they share the encoding
// when compressed).
func (r *jfrReader) long(size int) int64 {
	if r.compressed && size > 1 {
		v := r.varint()
		switch size {
		case 2:
			return int64(int16(v))
		case 4:
			return int64(int32(v))
		}
		return v
	}
	b := r.fixed(size)
	switch {
	case b == nil:
		return 0
	case size == 1:
		return int64(int8(b[0]))
	case size == 2:
		return int64(int16(binary.BigEndian.Uint16(b)))
	case size == 4:
		return int64(int32(binary.BigEndian.Uint32(b)))
	default:
		return int64(binary.BigEndian.Uint64(b))
	}
}

func (r *jfrReader) int() int64 { return r.long(4) }

// count reads an int that counts what follows, each taking at least one
// byte: a count beyond the bytes left is malformed.
func (r *jfrReader) count() int {
	n := r.int()
	if n < 0 || n > int64(len(r.b)-r.pos) {
		r.fail(fmt.Errorf("count %d beyond the %d bytes left", n, len(r.b)-r.pos))
		return 0
	}
	return int(n)
}

// jfrString is a string value: inline, or a reference into the
// java.lang.String constant pool.
type jfrString struct {
	s     string
	ref   int64
	isRef bool
}

// str reads a string in one of the encodings of the format: null, empty,
// a constant pool reference, UTF-8, a char array, or Latin-1.
func (r *jfrReader) str() jfrString {
	switch enc := r.byte(); enc {
	case 0, 1:
		return jfrString{}
	case 2:
		return jfrString{ref: r.long(8), isRef: true}
	case 3:
		return jfrString{s: string(r.fixed(r.count()))}
	case 4:
		n := r.count()
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = rune(uint16(r.long(2)))
		}
		return jfrString{s: string(rs)}
	case 5:
		b := r.fixed(r.count())
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		return jfrString{s: string(rs)}
	default:
		r.fail(fmt.Errorf("string encoding %d", enc))
		return jfrString{}
	}
}

// jfrField is a field of a type, as the metadata declares it.
type jfrField struct {
	name  string
	typ   int64
	cp    bool // the value is a constant pool id
	array bool
}

// jfrType is a type of the metadata.
type jfrType struct {
	name   string
	fields []jfrField
	prim   int // size of a primitive: 1 boolean/byte, 2 short/char, 4 int/float, 8 long/double; 0 otherwise
	float  bool
	str    bool // java.lang.String
}

// field returns the index of the named field, -1 if there is none.
func (t *jfrType) field(name string) int {
	for i := range t.fields {
		if t.fields[i].name == name {
			return i
		}
	}
	return -1
}

// jfrFrame is a resolved stack frame.
type jfrFrame struct {
	Class, Method, Package string
	Line                   int64
	Type                   string
}

// Function returns the frame's name as Pyroscope's conversion gives it:
// the class's internal name, a dot and the method.
func (f jfrFrame) Function() string {
	if f.Class == "" {
		return f.Method
	}
	return f.Class + "." + f.Method
}

type jfrFrameRef struct {
	method, line, typ int64
}

type jfrMethod struct{ class, name int64 }
type jfrClass struct{ name, pkg int64 }

// jfrChunk is one chunk being decoded: its metadata and the pools it
// refers to.
type jfrChunk struct {
	r        jfrReader
	types    map[int64]*jfrType
	start    time.Time
	duration time.Duration

	stacks     map[int64][]jfrFrameRef
	methods    map[int64]jfrMethod
	classes    map[int64]jfrClass
	packages   map[int64]int64
	symbols    map[int64]jfrString
	strings    map[int64]string
	frameTypes map[int64]jfrString
}

// jfrSample is one sample event, before its stack is resolved.
type jfrSample struct {
	event   string // the event type's name
	stack   int64
	context int64 // async-profiler's contextId, 0 if none
}

// walkJFR decodes the chunks of a recording in order, reading one chunk
// at a time from r, and calls visit for each sample event and chunkDone
// after each chunk. A chunk that cannot be decoded stops the walk with an
// error; the samples before it were visited.
func walkJFR(r io.Reader, visit func(c *jfrChunk, s jfrSample) error, chunkDone func(c *jfrChunk) error) error {
	var buf bytes.Buffer
	for off := int64(0); ; {
		var head [jfrHeaderSize]byte
		n, err := io.ReadFull(r, head[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("chunk at byte %d: header of %d bytes: %w", off, n, errJFRTruncated)
		}
		if string(head[:4]) != jfrMagic {
			return fmt.Errorf("chunk at byte %d: no JFR chunk header (magic FLR\\0)", off)
		}
		size := int64(binary.BigEndian.Uint64(head[8:]))
		if size < jfrHeaderSize || size > MaxProfileSize {
			return fmt.Errorf("chunk at byte %d: chunk size %d, want %d to %d (a recording still being written?)", off, size, jfrHeaderSize, MaxProfileSize)
		}
		// The buffer grows with the bytes read, not with the size the
		// header claims.
		buf.Reset()
		buf.Write(head[:])
		if n, err := io.CopyN(&buf, r, size-jfrHeaderSize); err != nil {
			return fmt.Errorf("chunk at byte %d: chunk size %d, %d bytes left: %w", off, size, jfrHeaderSize+n, errors.Join(errJFRTruncated, ignoreEOF(err)))
		}
		c, err := parseJFRChunk(buf.Bytes())
		if err != nil {
			return fmt.Errorf("chunk at byte %d: %w", off, err)
		}
		for _, s := range c.samples {
			if err := visit(c.jfrChunk, s); err != nil {
				return err
			}
		}
		if err := chunkDone(c.jfrChunk); err != nil {
			return err
		}
		off += size
	}
}

// ignoreEOF drops the io.EOF that says only that the input ended.
func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

type parsedChunk struct {
	*jfrChunk
	samples []jfrSample
}

// parseJFRChunk reads a chunk (its header checked by the caller): its
// metadata, then its events in order, keeping the constant pools and the
// sample events.
func parseJFRChunk(data []byte) (parsedChunk, error) {
	be := binary.BigEndian
	if major := be.Uint16(data[4:]); major != 2 {
		return parsedChunk{}, fmt.Errorf("JFR version %d.%d, want 2.x (JDK 11 and later, async-profiler)", major, be.Uint16(data[6:]))
	}
	size := int64(len(data))
	metaOff := int64(be.Uint64(data[24:]))
	if metaOff < jfrHeaderSize || metaOff >= size {
		return parsedChunk{}, fmt.Errorf("metadata offset %d outside the chunk of %d bytes", metaOff, size)
	}
	c := &jfrChunk{
		r:          jfrReader{b: data[:size], compressed: be.Uint32(data[64:])&1 != 0, budget: 64*len(data) + 1<<16},
		start:      time.Unix(0, int64(be.Uint64(data[32:]))).UTC(),
		duration:   time.Duration(be.Uint64(data[40:])),
		stacks:     map[int64][]jfrFrameRef{},
		methods:    map[int64]jfrMethod{},
		classes:    map[int64]jfrClass{},
		packages:   map[int64]int64{},
		symbols:    map[int64]jfrString{},
		strings:    map[int64]string{},
		frameTypes: map[int64]jfrString{},
	}
	r := &c.r
	r.pos = int(metaOff)
	if err := c.readMetadata(); err != nil {
		return parsedChunk{}, fmt.Errorf("metadata: %w", err)
	}
	sampleTypes := map[int64]string{}
	for id, t := range c.types {
		if jfrSampleType(t.name) != "" && t.field("stackTrace") >= 0 {
			sampleTypes[id] = t.name
		}
	}
	pc := parsedChunk{jfrChunk: c}
	for pos := jfrHeaderSize; pos < int(size); {
		r.pos = pos
		evSize := r.int()
		typ := r.long(8)
		if r.err != nil || evSize <= 0 || evSize > size-int64(pos) {
			return parsedChunk{}, fmt.Errorf("event at byte %d: size %d: %w", pos, evSize, errors.Join(r.err, errJFRTruncated))
		}
		end := pos + int(evSize)
		r.b = data[:end]
		switch {
		case typ == jfrConstantPoolID:
			if err := c.readConstantPool(); err != nil {
				return parsedChunk{}, fmt.Errorf("constant pool at byte %d: %w", pos, err)
			}
		case sampleTypes[typ] != "":
			s, err := c.readSample(c.types[typ])
			if err != nil {
				return parsedChunk{}, fmt.Errorf("%s event at byte %d: %w", sampleTypes[typ], pos, err)
			}
			pc.samples = append(pc.samples, s)
		}
		r.b = data[:size]
		r.err = nil
		pos = end
	}
	return pc, nil
}

// readMetadata reads the metadata event at r.pos: the types and their
// fields.
func (c *jfrChunk) readMetadata() error {
	r := &c.r
	r.int() // size
	if typ := r.long(8); typ != jfrMetadataID {
		return fmt.Errorf("event type %d at the metadata offset", typ)
	}
	r.long(8) // start time
	r.long(8) // duration
	r.long(8) // metadata id
	strs := make([]string, r.count())
	for i := range strs {
		s := r.str()
		if s.isRef {
			return errors.New("constant pool string in the metadata's string table")
		}
		strs[i] = s.s
	}
	if r.err != nil {
		return r.err
	}
	at := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			r.fail(fmt.Errorf("string index %d of %d", i, len(strs)))
			return ""
		}
		return strs[i]
	}
	c.types = map[int64]*jfrType{}
	var element func(depth int, parent *jfrType)
	element = func(depth int, parent *jfrType) {
		if depth > maxJFRNesting {
			r.fail(errors.New("elements nested too deep"))
			return
		}
		name := at(r.int())
		attrs := map[string]string{}
		for range r.count() {
			k := at(r.int())
			attrs[k] = at(r.int())
		}
		var t *jfrType
		switch name {
		case "class":
			id, err := strconv.ParseInt(attrs["id"], 10, 64)
			if err != nil {
				r.fail(fmt.Errorf("class %q: id %q", attrs["name"], attrs["id"]))
				return
			}
			t = &jfrType{name: attrs["name"]}
			switch t.name {
			case "boolean", "byte":
				t.prim = 1
			case "short", "char":
				t.prim = 2
			case "int":
				t.prim = 4
			case "float":
				t.prim, t.float = 4, true
			case "long":
				t.prim = 8
			case "double":
				t.prim, t.float = 8, true
			case "java.lang.String":
				t.str = true
			}
			c.types[id] = t
		case "field":
			if parent != nil {
				typ, err := strconv.ParseInt(attrs["class"], 10, 64)
				if err != nil {
					r.fail(fmt.Errorf("field %q: class %q", attrs["name"], attrs["class"]))
					return
				}
				parent.fields = append(parent.fields, jfrField{
					name: attrs["name"], typ: typ,
					cp: attrs["constantPool"] == "true", array: attrs["dimension"] == "1",
				})
			}
		}
		for range r.count() {
			element(depth+1, t)
			if r.err != nil {
				return
			}
		}
	}
	element(0, nil)
	if r.err != nil {
		return r.err
	}
	for _, t := range c.types {
		for _, f := range t.fields {
			if c.types[f.typ] == nil {
				return fmt.Errorf("type %s: field %s of undeclared type %d", t.name, f.name, f.typ)
			}
		}
	}
	return nil
}

// readConstantPool reads a checkpoint event at r.pos (after its size and
// type): per pool, its type and entries.
func (c *jfrChunk) readConstantPool() error {
	r := &c.r
	r.long(8) // start time
	r.long(8) // duration
	r.long(8) // delta to the previous checkpoint; every event is read in order instead
	r.byte()  // checkpoint type (flush, chunk, statics, thread)
	pools := r.count()
	for range pools {
		id := r.long(8)
		t := c.types[id]
		if t == nil {
			if r.err != nil {
				return r.err
			}
			return fmt.Errorf("pool of undeclared type %d", id)
		}
		for range r.count() {
			key := r.long(8)
			c.readEntry(t, key)
			if r.err != nil {
				return fmt.Errorf("%s %d: %w", t.name, key, r.err)
			}
		}
	}
	return r.err
}

// readEntry reads one pool entry, keeping it when stacks need its type.
func (c *jfrChunk) readEntry(t *jfrType, key int64) {
	r := &c.r
	switch t.name {
	case "jdk.types.StackTrace":
		var frames []jfrFrameRef
		c.fields(t, 0, func(f *jfrField) bool {
			if f.name != "frames" || !f.array || f.cp {
				return false
			}
			ft := c.types[f.typ]
			n := r.count()
			frames = make([]jfrFrameRef, 0, n)
			for range n {
				var fr jfrFrameRef
				c.fields(ft, 1, func(g *jfrField) bool {
					switch {
					case g.array:
						return false
					case g.name == "method" && g.cp:
						fr.method = r.long(8)
					case g.name == "lineNumber":
						fr.line = c.scalar(g)
					case g.name == "type" && g.cp:
						fr.typ = r.long(8)
					default:
						return false
					}
					return true
				})
				frames = append(frames, fr)
			}
			return true
		})
		c.stacks[key] = frames
	case "jdk.types.Method":
		var m jfrMethod
		c.fields(t, 0, func(f *jfrField) bool {
			switch {
			case f.array || !f.cp:
				return false
			case f.name == "type":
				m.class = r.long(8)
			case f.name == "name":
				m.name = r.long(8)
			default:
				return false
			}
			return true
		})
		c.methods[key] = m
	case "java.lang.Class":
		var k jfrClass
		c.fields(t, 0, func(f *jfrField) bool {
			switch {
			case f.array || !f.cp:
				return false
			case f.name == "name":
				k.name = r.long(8)
			case f.name == "package":
				k.pkg = r.long(8)
			default:
				return false
			}
			return true
		})
		c.classes[key] = k
	case "jdk.types.Package":
		c.fields(t, 0, func(f *jfrField) bool {
			if f.name != "name" || f.array || !f.cp {
				return false
			}
			c.packages[key] = r.long(8)
			return true
		})
	case "jdk.types.Symbol":
		c.symbols[key] = c.stringField(t, "string")
	case "jdk.types.FrameType":
		c.frameTypes[key] = c.stringField(t, "description")
	case "java.lang.String":
		s := r.str()
		if !s.isRef {
			c.strings[key] = s.s
		}
	default:
		c.skip(t, 0)
	}
}

// stringField reads a struct and returns its string field of that name.
func (c *jfrChunk) stringField(t *jfrType, name string) jfrString {
	var s jfrString
	c.fields(t, 0, func(f *jfrField) bool {
		if f.name != name || f.array || f.cp || !c.types[f.typ].str {
			return false
		}
		s = c.r.str()
		return true
	})
	return s
}

// fields reads the fields of a struct of type t in order: read reads the
// fields it wants and returns true; the others are skipped.
func (c *jfrChunk) fields(t *jfrType, depth int, read func(*jfrField) bool) {
	if t.prim > 0 || t.str {
		c.skip(t, depth)
		return
	}
	for i := range t.fields {
		if c.r.err != nil {
			return
		}
		if !read(&t.fields[i]) {
			c.skipField(&t.fields[i], depth+1)
		}
	}
}

// scalar reads an integer field, 0 for other kinds.
func (c *jfrChunk) scalar(f *jfrField) int64 {
	t := c.types[f.typ]
	if f.cp || f.array || t.prim == 0 || t.float {
		c.skipField(f, 1)
		return 0
	}
	return c.r.long(t.prim)
}

func (c *jfrChunk) skipField(f *jfrField, depth int) {
	r := &c.r
	if r.budget--; r.budget < 0 {
		r.fail(errors.New("values nest more fields than the chunk can hold"))
		return
	}
	n := 1
	if f.array {
		n = r.count()
	}
	t := c.types[f.typ]
	for range n {
		if f.cp {
			r.long(8)
		} else {
			c.skip(t, depth)
		}
		if r.err != nil {
			return
		}
	}
}

// skip reads past a value of type t.
func (c *jfrChunk) skip(t *jfrType, depth int) {
	r := &c.r
	switch {
	case depth > maxJFRNesting:
		r.fail(fmt.Errorf("type %s nested too deep", t.name))
	case t.str:
		r.str()
	case t.float:
		r.fixed(t.prim)
	case t.prim > 0:
		r.long(t.prim)
	default:
		for i := range t.fields {
			c.skipField(&t.fields[i], depth+1)
			if r.err != nil {
				return
			}
		}
	}
}

// readSample reads a sample event at r.pos (after its size and type).
func (c *jfrChunk) readSample(t *jfrType) (jfrSample, error) {
	s := jfrSample{event: t.name}
	c.fields(t, 0, func(f *jfrField) bool {
		switch {
		case f.array:
			return false
		case f.name == "stackTrace" && f.cp:
			s.stack = c.r.long(8)
		case f.name == "contextId":
			s.context = c.scalar(f)
		default:
			return false
		}
		return true
	})
	return s, c.r.err
}

// symbol resolves a symbol id to its string.
func (c *jfrChunk) symbol(id int64) string {
	return c.resolve(c.symbols[id])
}

func (c *jfrChunk) resolve(s jfrString) string {
	if s.isRef {
		return c.strings[s.ref]
	}
	return s.s
}

// frames resolves a stack trace into out, leaf first; ok is false when
// the chunk has no such stack trace.
func (c *jfrChunk) frames(stack int64, out []jfrFrame) ([]jfrFrame, bool) {
	refs, ok := c.stacks[stack]
	if !ok {
		return out, false
	}
	for _, fr := range refs {
		m := c.methods[fr.method]
		k := c.classes[m.class]
		out = append(out, jfrFrame{
			Class:   c.symbol(k.name),
			Method:  c.symbol(m.name),
			Package: c.symbol(c.packages[k.pkg]),
			Line:    fr.line,
			Type:    c.resolve(c.frameTypes[fr.typ]),
		})
	}
	return out, true
}

// DecodeJFR decodes the CPU and wall-clock samples of a JFR recording
// (gzipped or raw) into a profile per sample type: "cpu" from
// jdk.ExecutionSample, "wall" from jdk.NativeMethodSample and
// async-profiler's profiler.WallClockSample, each counting samples.
// Frames are named as Pyroscope names them, "java/lang/String.substring".
// A recording whose samples or locations go over l is refused with an
// error naming the limit that matches ErrTooLarge; deeper stacks are cut
// to their leaf end. The zero Limits is no limit.
func (l Limits) DecodeJFR(data []byte, source string) ([]*ProfileBatch, error) {
	return l.DecodeJFRReader(bytes.NewReader(data), source)
}

// DecodeJFRReader is DecodeJFR reading the recording from r a chunk at a
// time: memory holds one chunk and its constant pools besides the
// profile being built.
func (l Limits) DecodeJFRReader(r io.Reader, source string) ([]*ProfileBatch, error) {
	return l.decodeJFR(r, source, nil)
}

// decodeJFR decodes a recording, tying samples to the spans of their
// context ids.
func (l Limits) decodeJFR(r io.Reader, source string, contexts jfrContexts) ([]*ProfileBatch, error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(2); hasPrefix(head, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("decode jfr %s: gzip: %w: %w", source, ErrMalformed, err)
		}
		r = CutShortReader(zr, "gzip")
	} else {
		r = br
	}
	b := newStackBuilder(source, l)
	var frames []jfrFrame
	// The stacks of a chunk, resolved once: samples repeat a few stacks.
	stacks := map[int64][]attribution.Frame{}
	seen := 0
	err := walkJFR(r, func(c *jfrChunk, s jfrSample) error {
		seen++
		names, ok := stacks[s.stack]
		if !ok {
			frames, ok = c.frames(s.stack, frames[:0])
			if !ok {
				b.errs.addf(fmt.Errorf("stack trace %d is in no constant pool of its chunk", s.stack), "%s sample %d", s.event, seen)
				return nil
			}
			names = make([]attribution.Frame, len(frames))
			for i, f := range frames {
				names[i] = attribution.Frame{Function: f.Function()}
			}
			stacks[s.stack] = names
		}
		var span spanLabels
		if s.context != 0 {
			span = contexts[s.context]
		}
		return b.add(countOf(jfrSampleType(s.event)), names, 1, 1, span)
	}, func(c *jfrChunk) error {
		b.window(c.start, c.duration)
		clear(stacks)
		return nil
	})
	if errors.Is(err, ErrTooLarge) {
		return nil, err
	}
	if err != nil {
		err = fmt.Errorf("decode jfr %s: %w: %w", source, ErrMalformed, err)
	}
	return b.batches(), errors.Join(err, b.errs.err())
}
