// Package inflate decompresses DEFLATE streams (RFC 1951) in gzip members
// (RFC 1952) and zlib streams (RFC 1950) that are held whole in memory,
// into one buffer.
//
// compress/flate and klauspost/compress/flate are streaming readers: they
// read their input a byte at a time through an io.Reader, decode into a
// 32 KiB window and copy the window out to the caller. A profile arrives
// whole, and its size is in the gzip trailer, so this package reads the
// input as a slice, 56 bits at a time, resolves each Huffman code with one
// table lookup in most cases, and copies matches inside the output itself.
// It inflates a mid-size profile in half the time klauspost/compress
// takes, and the smallest in about as much (BenchmarkGunzip): the pprof
// target of issue 11 needs it, inflating having taken a third of a
// profile's decoding.
//
// It accepts what compress/gzip accepts and refuses what it refuses, but
// for a member with a reserved header flag set, which RFC 1952 has
// refused (as zlib and klauspost/compress do) and compress/gzip accepts
// (FuzzGunzip compares them); and a zlib stream as compress/zlib does
// (FuzzZlib). Its kinds of error are theirs: a stream cut short is
// io.ErrUnexpectedEOF, a bad header ErrHeader or ErrZlibHeader, a bad
// trailer ErrChecksum or ErrZlibChecksum, and a bad DEFLATE stream a
// *CorruptError, whose offset counts from the start of src.
package inflate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
)

var (
	// ErrHeader is a gzip member whose header is not one.
	ErrHeader = errors.New("gzip: invalid header")
	// ErrChecksum is a gzip member whose trailer does not match what it
	// inflated to.
	ErrChecksum = errors.New("gzip: invalid checksum")
	// ErrLimit is output that would exceed the caller's limit.
	ErrLimit = errors.New("inflate: output over the limit")
	// ErrZlibHeader is a zlib stream whose header is not one.
	ErrZlibHeader = errors.New("zlib: invalid header")
	// ErrZlibChecksum is a zlib stream whose Adler-32 does not match
	// what it inflated to.
	ErrZlibChecksum = errors.New("zlib: invalid checksum")
	// ErrDictionary is a zlib stream that needs a preset dictionary,
	// which no telemetry sender uses.
	ErrDictionary = errors.New("zlib: invalid dictionary")
)

// CorruptError is a DEFLATE stream that breaks RFC 1951 at about Offset
// bytes into the input.
type CorruptError struct {
	Offset int
	What   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("flate: corrupt input before offset %d: %s", e.Offset, e.What)
}

// Table sizes: a primary table indexed by the next litlenBits (distBits)
// bits of the input, followed by the subtables of longer codes. The
// totals are the most any valid code of up to 15 bits can need (zlib's
// examples/enough.c: "enough 288 11 15" and "enough 32 8 15").
const (
	litlenBits   = 11
	distBits     = 8
	clenBits     = 7
	litlenTable  = 2342
	distTable    = 402
	maxLitlen    = 286
	maxDist      = 30
	maxCodeBits  = 15
	maxMatch     = 258
	entryBitsLen = 0xf
)

// A table entry is a uint32: the low four bits are how many bits the code
// takes (for a subtable link, the subtable's index bits), the next four
// its kind, bits 8-15 the number of extra bits that follow it, and bits
// 16-31 its value (a literal byte, a base length or distance, a subtable's
// offset in the table). Every entry but a link's and an invalid code's,
// taken modulo 64, is how many bits its code takes: the decoder shifts its
// bits by the entry itself (shiftMask), which the shift instruction masks
// for free, one operation less on the chain from one code to the next.
const (
	kindLink    = 0x10
	kindBad     = 0x20
	kindLiteral = 0x40
	kindEnd     = 0x80
	shiftMask   = 63
)

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// clenOrder is the order of the code length code's lengths.
	clenOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// Decoder inflates; it keeps its Huffman tables from one call to the
// next. The zero value is ready to use; a Decoder is not safe for
// concurrent use.
type Decoder struct {
	litlen [litlenTable]uint32
	dist   [distTable]uint32
	clen   [1 << clenBits]uint32
	lens   [maxLitlen + maxDist]uint8
	// fixed says the tables hold the fixed codes of RFC 1951 3.2.6.
	fixed bool
	// long is, while a table is built, the index bits of the subtable
	// under each primary entry.
	long [1 << litlenBits]uint8

	in   []byte
	pos  int    // next byte of in to load into b
	b    uint64 // bits loaded, the next one lowest
	n    uint   // how many of b's bits are loaded
	out  []byte // the output so far; len is what was written
	max  int    // the caller's limit on len(out)
	base int    // len(out) when this member began
}

// Headroom is how many bytes past the content Gunzip uses in dst: with
// cap(dst) at least the content's size plus Headroom, it allocates
// nothing.
const Headroom = maxMatch + slack

// Size returns the size of the content of gzipped src as its trailer
// states it, when that is plausible: src is long enough to hold a member,
// and the size is at most 64 times src's (deflate can reach about 1000,
// but what is sent as telemetry does not come near 64). The trailer holds
// the last member's size modulo 2^32, so it is only a hint: of src's
// content when src is one member and whole, as it almost always is.
func Size(src []byte) (int, bool) {
	if len(src) < 18 {
		return 0, false
	}
	size := uint64(binary.LittleEndian.Uint32(src[len(src)-4:]))
	if size > 64*uint64(len(src)) || size > math.MaxInt {
		return 0, false
	}
	return int(size), true
}

// Gunzip returns the content of the gzip members in src, one after the
// other, appended to dst[:0]; dst's storage is used when large enough.
// Output over limit bytes stops it with ErrLimit. On error it returns what
// it inflated so far.
func (d *Decoder) Gunzip(dst, src []byte, limit int) ([]byte, error) {
	// The output's storage is sized up to limit+Headroom: no limit can
	// be closer to math.MaxInt, nor need be.
	d.out, d.max = dst[:0], min(limit, math.MaxInt-Headroom)
	// A Decoder kept for the next input (pooled) holds no output.
	defer func() { d.out = nil }()
	if size, ok := Size(src); ok && size <= limit && cap(d.out) < size+Headroom {
		d.out = make([]byte, 0, size+Headroom)
	}
	pos := 0
	for {
		start, err := header(src, pos)
		if err != nil {
			return d.out, err
		}
		d.base = len(d.out)
		end, err := d.inflate(src, start)
		if err != nil {
			return d.out, err
		}
		if len(src)-end < 8 {
			return d.out, io.ErrUnexpectedEOF
		}
		member := d.out[d.base:]
		if binary.LittleEndian.Uint32(src[end:]) != crc32.ChecksumIEEE(member) ||
			binary.LittleEndian.Uint32(src[end+4:]) != uint32(len(member)) {
			return d.out, ErrChecksum
		}
		pos = end + 8
		if pos == len(src) {
			return d.out, nil
		}
	}
}

// gzip header flags.
const (
	flagText    = 1 << 0
	flagHdrCRC  = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
)

// maxHeaderString is the longest file name or comment, with its NUL,
// that compress/gzip reads.
const maxHeaderString = 512

// header reads the gzip member header at src[pos:] and returns where its
// DEFLATE stream starts.
func header(src []byte, pos int) (int, error) {
	start := pos
	if len(src)-pos < 10 {
		return 0, io.ErrUnexpectedEOF
	}
	if src[pos] != 0x1f || src[pos+1] != 0x8b || src[pos+2] != 8 {
		return 0, ErrHeader
	}
	flags := src[pos+3]
	pos += 10
	if flags&flagExtra != 0 {
		if len(src)-pos < 2 {
			return 0, io.ErrUnexpectedEOF
		}
		n := int(binary.LittleEndian.Uint16(src[pos:]))
		pos += 2
		if len(src)-pos < n {
			return 0, io.ErrUnexpectedEOF
		}
		pos += n
	}
	for _, f := range []byte{flagName, flagComment} {
		if flags&f == 0 {
			continue
		}
		i := 0
		for ; ; i++ {
			if i == maxHeaderString {
				return 0, ErrHeader
			}
			if pos+i == len(src) {
				return 0, io.ErrUnexpectedEOF
			}
			if src[pos+i] == 0 {
				break
			}
		}
		pos += i + 1
	}
	if flags&flagHdrCRC != 0 {
		if len(src)-pos < 2 {
			return 0, io.ErrUnexpectedEOF
		}
		if binary.LittleEndian.Uint16(src[pos:]) != uint16(crc32.ChecksumIEEE(src[start:pos])) {
			return 0, ErrHeader
		}
		pos += 2
	}
	// RFC 1952 (2.3.1.2) has a reader refuse a member with a reserved
	// flag set, which may announce a field it cannot skip; so do zlib and
	// klauspost/compress, though compress/gzip does not. Checked last, as
	// they do.
	if flags>>5 != 0 {
		return 0, ErrHeader
	}
	return pos, nil
}

// Zlib returns the content of the zlib stream (RFC 1950) at the start of
// src, appended to dst[:0]; dst's storage is used when large enough (a
// zlib stream does not state its size). Output over limit bytes stops it
// with ErrLimit. As compress/zlib does, it reads nothing after the
// stream's checksum. On error it returns what it inflated so far.
func (d *Decoder) Zlib(dst, src []byte, limit int) ([]byte, error) {
	d.out, d.max, d.base = dst[:0], min(limit, math.MaxInt-Headroom), 0
	defer func() { d.out = nil }()
	if len(src) < 2 {
		return d.out, io.ErrUnexpectedEOF
	}
	// CM 8 (deflate) with a window of at most 32 KiB, and a check that
	// makes the first two bytes a multiple of 31.
	if src[0]&0x0f != 8 || src[0]>>4 > 7 || binary.BigEndian.Uint16(src)%31 != 0 {
		return d.out, ErrZlibHeader
	}
	start := 2
	if src[1]&0x20 != 0 {
		// A preset dictionary, named by its Adler-32: none is known
		// here, so only the empty one's (1) can be read, as
		// compress/zlib reads it without one.
		if len(src) < 6 {
			return d.out, io.ErrUnexpectedEOF
		}
		if binary.BigEndian.Uint32(src[2:]) != 1 {
			return d.out, ErrDictionary
		}
		start = 6
	}
	end, err := d.inflate(src, start)
	if err != nil {
		return d.out, err
	}
	if len(src)-end < 4 {
		return d.out, io.ErrUnexpectedEOF
	}
	if binary.BigEndian.Uint32(src[end:]) != adler32.Checksum(d.out) {
		return d.out, ErrZlibChecksum
	}
	return d.out, nil
}

// inflate decodes the DEFLATE stream at src[pos:] onto d.out and returns
// where the byte after its last block is.
func (d *Decoder) inflate(src []byte, pos int) (int, error) {
	d.in, d.pos, d.b, d.n = src, pos, 0, 0
	defer func() { d.in = nil }()
	for {
		if err := d.need(3); err != nil {
			return 0, err
		}
		final := d.b&1 != 0
		kind := (d.b >> 1) & 3
		d.drop(3)
		var err error
		switch kind {
		case 0:
			err = d.stored()
		case 1:
			if !d.fixed {
				d.fixedTables()
			}
			err = d.codes()
		case 2:
			d.fixed = false
			if err = d.dynamicTables(); err == nil {
				err = d.codes()
			}
		default:
			err = d.corrupt("reserved block type")
		}
		if err != nil {
			return 0, err
		}
		if final {
			// The stream ends at a byte boundary: give back the
			// whole bytes loaded and not used.
			end := d.pos - int(d.n>>3)
			if end > len(d.in) {
				return 0, io.ErrUnexpectedEOF
			}
			return end, nil
		}
	}
}

// overrun is how many bytes past the input the bit buffer may be filled
// with zeros: enough for the longest symbol, so that a stream ending near
// the end of its input is decoded by the same loop.
const overrun = 8

// need loads bits until at least k are loaded, or fails when the input
// ends before.
func (d *Decoder) need(k uint) error {
	for d.n < k {
		if d.pos >= len(d.in)+overrun {
			return io.ErrUnexpectedEOF
		}
		if d.pos < len(d.in) {
			d.b |= uint64(d.in[d.pos]) << d.n
		}
		d.pos++
		d.n += 8
	}
	return nil
}

func (d *Decoder) drop(k uint) {
	d.b >>= k
	d.n -= k
}

// corrupt is the error of a stream that breaks the format, or, when the
// decoder has read past the end of its input, of a stream cut short.
func (d *Decoder) corrupt(what string) error {
	used := d.pos - int(d.n>>3)
	if used > len(d.in) {
		return io.ErrUnexpectedEOF
	}
	return &CorruptError{Offset: used, What: what}
}

// stored copies a stored block.
func (d *Decoder) stored() error {
	// Back to the byte boundary: the rest of the current byte is
	// padding, and the whole bytes loaded are given back.
	d.pos -= int(d.n >> 3)
	d.b, d.n = 0, 0
	if d.pos+4 > len(d.in) {
		return io.ErrUnexpectedEOF
	}
	n := int(binary.LittleEndian.Uint16(d.in[d.pos:]))
	if uint16(n) != ^binary.LittleEndian.Uint16(d.in[d.pos+2:]) {
		d.pos += 4
		return d.corrupt("stored block length and its complement disagree")
	}
	d.pos += 4
	// Over the limit before the input ends: within it, the storage a
	// caller sized for limit+Headroom is never outgrown.
	if len(d.out)+min(n, len(d.in)-d.pos) > d.max {
		return ErrLimit
	}
	if len(d.in)-d.pos < n {
		d.out = append(d.out, d.in[d.pos:]...)
		return io.ErrUnexpectedEOF
	}
	d.out = append(d.out, d.in[d.pos:d.pos+n]...)
	d.pos += n
	return nil
}

// fixedTables builds the tables of the fixed codes.
func (d *Decoder) fixedTables() {
	var lens [288 + 32]uint8
	for i := range 288 {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	for i := 288; i < len(lens); i++ {
		lens[i] = 5
	}
	// The fixed codes are complete: building them cannot fail.
	_ = d.build(d.litlen[:], litlenBits, lens[:288], litlenEntry)
	_ = d.build(d.dist[:], distBits, lens[288:], distEntry)
	d.fixed = true
}

// dynamicTables reads a dynamic block's code lengths and builds its tables.
func (d *Decoder) dynamicTables() error {
	if err := d.need(14); err != nil {
		return err
	}
	nlit := int(d.b&0x1f) + 257
	ndist := int(d.b>>5&0x1f) + 1
	nclen := int(d.b>>10&0xf) + 4
	d.drop(14)
	if nlit > maxLitlen {
		return d.corrupt(fmt.Sprintf("%d literal/length codes", nlit))
	}
	if ndist > maxDist {
		return d.corrupt(fmt.Sprintf("%d distance codes", ndist))
	}
	var clens [19]uint8
	for _, sym := range clenOrder[:nclen] {
		if err := d.need(3); err != nil {
			return err
		}
		clens[sym] = uint8(d.b & 7)
		d.drop(3)
	}
	if err := d.build(d.clen[:], clenBits, clens[:], clenEntry); err != nil {
		return err
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if err := d.need(clenBits + 7); err != nil {
			return err
		}
		e := d.clen[d.b&(1<<clenBits-1)]
		if e&kindBad != 0 {
			return d.corrupt("invalid code length code")
		}
		d.drop(uint(e & entryBitsLen))
		sym := e >> 16
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var fill uint8
		switch sym {
		case 16:
			if i == 0 {
				return d.corrupt("repeat of no previous length")
			}
			rep, fill = 3+int(d.b&3), lens[i-1]
			d.drop(2)
		case 17:
			rep = 3 + int(d.b&7)
			d.drop(3)
		default:
			rep = 11 + int(d.b&0x7f)
			d.drop(7)
		}
		if i+rep > len(lens) {
			return d.corrupt("code lengths run past their count")
		}
		for range rep {
			lens[i] = fill
			i++
		}
	}
	if err := d.build(d.litlen[:], litlenBits, lens[:nlit], litlenEntry); err != nil {
		return err
	}
	return d.build(d.dist[:], distBits, lens[nlit:], distEntry)
}

// litlenEntry, distEntry and clenEntry are the table entries of each
// alphabet's symbols, without their code length.
func litlenEntry(sym int) uint32 {
	switch {
	case sym < 256:
		return kindLiteral | uint32(sym)<<16
	case sym == 256:
		return kindEnd
	case sym < maxLitlen:
		i := sym - 257
		return uint32(lengthBase[i])<<16 | uint32(lengthExtra[i])<<8
	default:
		return kindBad
	}
}

func distEntry(sym int) uint32 {
	if sym >= maxDist {
		return kindBad
	}
	return uint32(distBase[sym])<<16 | uint32(distExtra[sym])<<8
}

func clenEntry(sym int) uint32 { return uint32(sym) << 16 }

// build fills table from the code lengths of an alphabet's symbols: a
// primary table of 1<<primary entries, each a symbol whose code is at
// most primary bits long (repeated for every value of the bits after it)
// or a link to a subtable of the longer codes that start with its bits.
// Entries no code reaches are kindBad. Like compress/flate, it refuses a
// code that is not complete, except a single code of one bit and no code
// at all (which fails when used).
func (d *Decoder) build(table []uint32, primary uint, lens []uint8, entry func(int) uint32) error {
	var count [maxCodeBits + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left, total := 1, 0
	for l := 1; l <= maxCodeBits; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return d.corrupt("over-subscribed Huffman code")
		}
		total += count[l]
	}
	if left > 0 && total > 0 && !(total == 1 && count[1] == 1) {
		return d.corrupt("incomplete Huffman code")
	}
	var next [maxCodeBits + 1]uint32
	code, longest := uint32(0), uint(0)
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + uint32(count[l-1])) << 1
		next[l] = code
		if count[l] > 0 {
			longest = uint(l)
		}
	}
	size := 1 << primary
	if left > 0 {
		// Entries of a complete code are all written below; those
		// an incomplete one leaves are invalid.
		for i := range table[:size] {
			table[i] = kindBad
		}
	}
	if longest > primary {
		// Codes are sent most significant bit first and read least
		// significant bit first: the tables are indexed by the
		// reversed code, and a subtable holds the codes whose last
		// primary bits, reversed, are its link's index.
		long := d.long[:size]
		clear(long)
		for _, l := range lens {
			if uint(l) > primary {
				rev := bits.Reverse32(next[l]) >> (32 - uint(l))
				next[l]++
				p := rev & uint32(size-1)
				long[p] = max(long[p], l-uint8(primary))
			}
		}
		off := size
		for p, sub := range long {
			if sub == 0 {
				continue
			}
			n := 1 << sub
			if off+n > len(table) {
				return d.corrupt("Huffman code too large")
			}
			table[p] = kindLink | uint32(off)<<16 | uint32(sub)
			for i := off; i < off+n; i++ {
				table[i] = kindBad
			}
			off += n
		}
	}
	// Second pass: assign the codes again from the start.
	code = 0
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + uint32(count[l-1])) << 1
		next[l] = code
	}
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		rev := bits.Reverse32(next[l]) >> (32 - uint(l))
		next[l]++
		e := entry(sym)
		if uint(l) <= primary {
			for i := rev; i < uint32(size); i += 1 << l {
				table[i] = e | uint32(l)
			}
			continue
		}
		link := table[rev&uint32(size-1)]
		sub := uint(link & entryBitsLen)
		at := link >> 16
		step := uint32(1) << (uint(l) - primary)
		for i := rev >> primary; i < 1<<sub; i += step {
			table[at+i] = e | uint32(uint(l)-primary)
		}
	}
	return nil
}

// slack is how many bytes the output keeps beyond what is written, so
// that a match is copied eight bytes at a time, past its end.
const slack = 8

// codes decodes a block's symbols with the current tables: fastCodes as
// long as the input allows, then the loop below, which checks every code
// against the input's end.
func (d *Decoder) codes() error {
	if done, err := d.fastCodes(); done {
		return err
	}
	// The loop keeps the bit reader and the output in registers, and
	// save writes them back.
	in, pos, b, n := d.in, d.pos, d.b, d.n
	out := d.out[:cap(d.out)]
	op := len(d.out)
	// Below lim, a literal is within the limit, and a literal or a match
	// of up to maxMatch bytes fits in out with its slack.
	lim := d.bound(out)
	for {
		// A length and a distance take at most 48 bits with their
		// extra bits. fastCodes stopped with fewer than eight bytes
		// of input left, so they are loaded a byte at a time.
		if n < 48 {
			for n <= 56 {
				if pos >= len(in)+overrun {
					d.save(pos, b, n, out, op)
					return io.ErrUnexpectedEOF
				}
				if pos < len(in) {
					b |= uint64(in[pos]) << n
				}
				pos++
				n += 8
			}
		}
		e := d.litlen[b&(1<<litlenBits-1)]
		if e&kindLink != 0 {
			b >>= litlenBits
			n -= litlenBits
			e = d.litlen[e>>16+uint32(b)&(1<<(e&entryBitsLen)-1)]
		}
		b >>= e & shiftMask
		n -= uint(e & entryBitsLen)
		if pos > len(in) && 8*(pos-len(in)) > int(n) {
			// The code took bits past the input's end.
			d.save(pos, b, n, out, op)
			return io.ErrUnexpectedEOF
		}
		if e&kindLiteral != 0 {
			if op >= lim {
				if op >= d.max {
					d.save(pos, b, n, out, op)
					return ErrLimit
				}
				out = d.grow(out, op)
				lim = d.bound(out)
			}
			out[op] = byte(e >> 16)
			op++
			continue
		}
		if e&(kindEnd|kindBad) != 0 {
			if e&kindEnd != 0 {
				d.save(pos, b, n, out, op)
				return nil
			}
			d.save(pos, b, n, out, op)
			return d.corrupt("invalid literal/length code")
		}
		// An extra bits count is at most 13; masked to under 64, the
		// shifts need no code for counts of 64 and over.
		extra := (e >> 8) & shiftMask
		length := int(e>>16) + int(b&(1<<extra-1))
		b >>= extra
		n -= uint(extra)

		e = d.dist[b&(1<<distBits-1)]
		if e&kindLink != 0 {
			b >>= distBits
			n -= distBits
			e = d.dist[e>>16+uint32(b)&(1<<(e&entryBitsLen)-1)]
		}
		b >>= e & shiftMask
		n -= uint(e & entryBitsLen)
		if e&kindBad != 0 {
			d.save(pos, b, n, out, op)
			return d.corrupt("invalid distance code")
		}
		extra = (e >> 8) & shiftMask
		dist := int(e>>16) + int(b&(1<<extra-1))
		b >>= extra
		n -= uint(extra)
		if pos > len(in) && 8*(pos-len(in)) > int(n) {
			d.save(pos, b, n, out, op)
			return io.ErrUnexpectedEOF
		}
		if dist > op-d.base {
			d.save(pos, b, n, out, op)
			return d.corrupt(fmt.Sprintf("distance %d beyond the %d bytes inflated", dist, op-d.base))
		}
		end := op + length
		if end > d.max {
			d.save(pos, b, n, out, op)
			return ErrLimit
		}
		if op >= lim {
			out = d.grow(out, op)
			lim = d.bound(out)
		}
		from := op - dist
		switch {
		case dist >= 8:
			// Eight bytes at a time: each word read was written
			// before, at least eight bytes back.
			for op < end {
				binary.LittleEndian.PutUint64(out[op:], binary.LittleEndian.Uint64(out[from:]))
				op += 8
				from += 8
			}
		case dist == 1:
			w := uint64(out[from]) * 0x0101010101010101
			for op < end {
				binary.LittleEndian.PutUint64(out[op:], w)
				op += 8
			}
		default:
			for op < end {
				op += copy(out[op:end], out[from:op])
			}
		}
		op = end
	}
}

// fastCodes is codes far from the input's end, where every iteration
// starts with eight bytes of input left: its refill is the one without a
// branch, and the at least 56 bits it leaves are more than the codes and
// extra bits of an iteration take (three literals, or a length and a
// distance: 48), so no code can take bits past the input's end and none
// is checked for it. It stops, with the state saved, when fewer bytes are
// left, and reports whether it ended the block (with its error). Without
// those checks, and writing up to three literals a pass without a loop,
// it took about a tenth fewer instructions than the checked loop on the
// same input (issue 11); codes' loop now inflates only a block's last
// few bytes, one literal a pass.
func (d *Decoder) fastCodes() (done bool, err error) {
	in, pos, b, n := d.in, d.pos, d.b, d.n
	out := d.out[:cap(d.out)]
	op := len(d.out)
	lim := d.bound(out)
	last := len(in) - 8
	for pos <= last {
		b |= binary.LittleEndian.Uint64(in[pos:]) << (n & 63)
		pos += int((63 - n) >> 3)
		n |= 56
		e := d.litlen[b&(1<<litlenBits-1)]
		if e&kindLink != 0 {
			b >>= litlenBits
			n -= litlenBits
			e = d.litlen[e>>16+uint32(b)&(1<<(e&entryBitsLen)-1)]
		}
		b >>= e & shiftMask
		n -= uint(e & entryBitsLen)
		if e&kindLiteral != 0 {
			// After a refill, at least 56 bits were loaded: enough
			// for three literals, and most often what follows a
			// literal is another. The three are written out in
			// turn, without a loop's counter.
			if op >= lim {
				if op >= d.max {
					d.save(pos, b, n, out, op)
					return true, ErrLimit
				}
				out = d.grow(out, op)
				lim = d.bound(out)
			}
			out[op] = byte(e >> 16)
			op++
			if e = d.litlen[b&(1<<litlenBits-1)]; e&kindLiteral == 0 {
				continue
			}
			b >>= e & shiftMask
			n -= uint(e & entryBitsLen)
			if op >= lim {
				if op >= d.max {
					d.save(pos, b, n, out, op)
					return true, ErrLimit
				}
				out = d.grow(out, op)
				lim = d.bound(out)
			}
			out[op] = byte(e >> 16)
			op++
			if e = d.litlen[b&(1<<litlenBits-1)]; e&kindLiteral == 0 {
				continue
			}
			b >>= e & shiftMask
			n -= uint(e & entryBitsLen)
			if op >= lim {
				if op >= d.max {
					d.save(pos, b, n, out, op)
					return true, ErrLimit
				}
				out = d.grow(out, op)
				lim = d.bound(out)
			}
			out[op] = byte(e >> 16)
			op++
			continue
		}
		if e&(kindEnd|kindBad) != 0 {
			if e&kindEnd != 0 {
				d.save(pos, b, n, out, op)
				return true, nil
			}
			d.save(pos, b, n, out, op)
			return true, d.corrupt("invalid literal/length code")
		}
		// An extra bits count is at most 13; masked to under 64, the
		// shifts need no code for counts of 64 and over.
		extra := (e >> 8) & shiftMask
		length := int(e>>16) + int(b&(1<<extra-1))
		b >>= extra
		n -= uint(extra)

		e = d.dist[b&(1<<distBits-1)]
		if e&kindLink != 0 {
			b >>= distBits
			n -= distBits
			e = d.dist[e>>16+uint32(b)&(1<<(e&entryBitsLen)-1)]
		}
		b >>= e & shiftMask
		n -= uint(e & entryBitsLen)
		if e&kindBad != 0 {
			d.save(pos, b, n, out, op)
			return true, d.corrupt("invalid distance code")
		}
		extra = (e >> 8) & shiftMask
		dist := int(e>>16) + int(b&(1<<extra-1))
		b >>= extra
		n -= uint(extra)
		if dist > op-d.base {
			d.save(pos, b, n, out, op)
			return true, d.corrupt(fmt.Sprintf("distance %d beyond the %d bytes inflated", dist, op-d.base))
		}
		end := op + length
		if end > d.max {
			d.save(pos, b, n, out, op)
			return true, ErrLimit
		}
		if op >= lim {
			out = d.grow(out, op)
			lim = d.bound(out)
		}
		from := op - dist
		switch {
		case dist >= 8:
			// Eight bytes at a time: each word read was written
			// before, at least eight bytes back.
			for op < end {
				binary.LittleEndian.PutUint64(out[op:], binary.LittleEndian.Uint64(out[from:]))
				op += 8
				from += 8
			}
		case dist == 1:
			w := uint64(out[from]) * 0x0101010101010101
			for op < end {
				binary.LittleEndian.PutUint64(out[op:], w)
				op += 8
			}
		default:
			for op < end {
				op += copy(out[op:end], out[from:op])
			}
		}
		op = end
	}
	d.save(pos, b, n, out, op)
	return false, nil
}

// save writes the bit reader and the output of codes back to d.
func (d *Decoder) save(pos int, b uint64, n uint, out []byte, op int) {
	d.pos, d.b, d.n = pos, b, n
	d.out = out[:op]
}

// bound is where the literals and matches written to out must start for
// a literal to be within the limit and a match to fit with its slack.
func (d *Decoder) bound(out []byte) int {
	return min(len(out)-slack-maxMatch, d.max)
}

// grow returns out, with op bytes written, grown so that a match fits
// after them with its slack.
func (d *Decoder) grow(out []byte, op int) []byte {
	if len(out)-op >= maxMatch+slack {
		return out
	}
	size := max(2*len(out), 4096, op+maxMatch+slack)
	grown := make([]byte, min(size, d.max+maxMatch+slack))
	copy(grown, out[:op])
	return grown
}
