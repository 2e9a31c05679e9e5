package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// ProfileFormat is the encoding of a profile as it was received, which
// says which decoder reads it.
type ProfileFormat uint8

// Profile formats. The numbers are written in the engine's log
// (AppendProfileRequest): they are never reused.
const (
	// FormatPprof is a pprof profile (DecodePprof).
	FormatPprof ProfileFormat = 1
	// FormatPyroscopeJFR is a JFR recording with the Pyroscope Java
	// agent's labels snapshot (DecodePyroscopeJFR).
	FormatPyroscopeJFR ProfileFormat = 2
	// FormatFolded is folded stacks with a count on each line
	// (DecodeFolded, counted).
	FormatFolded ProfileFormat = 3
	// FormatLines is one stack per line, each line one sample (DecodeFolded,
	// not counted; Pyroscope's format=lines).
	FormatLines ProfileFormat = 4
	// FormatOTLPProfiles is an OTLP ExportProfilesServiceRequest
	// (DecodeOTLPProfiles).
	FormatOTLPProfiles ProfileFormat = 5
)

// ReceivedProfile is one profile as a receiver got it, after the
// transport's own compression was undone, with what the request around it
// said about it: what DecodeProfile needs to turn it into the batches the
// receiver handed on, again, byte for byte the same.
type ReceivedProfile struct {
	Format ProfileFormat
	// Data is the profile as received.
	Data []byte
	// Labels is the labels snapshot sent beside a FormatPyroscopeJFR
	// recording, nil when none was.
	Labels []byte
	// Source names the receiver and the request, for errors and evidence
	// (ProfileBatch.Source).
	Source string
	// Service and Namespace are given to the batches that name no service
	// of their own.
	Service, Namespace string
	// Ingest is what the query of a Pyroscope /ingest request said about
	// the profile's time, nil for the other requests.
	Ingest *IngestWindow

	// texts is where the texts of a pprof profile are, as DecodeProfile
	// met them, for Masks; nil when it has not decoded the profile.
	texts *pprofTexts
}

// IngestWindow is the time a Pyroscope /ingest request gives its profile:
// from and until (zero when not sent), when the request came, and the
// sample rate in Hz (0 when not sent); and the type of what a body that
// names none (folded stacks, lines) counts.
type IngestWindow struct {
	From, Until, Now time.Time
	SampleRate       int64
	// Type is the profile type the request names for folded stacks or
	// lines, which say nothing of what they count: the suffix of the
	// application name ("app.alloc_objects") or else units other than
	// samples ("objects", "lock_nanoseconds"); "" for the samples of a
	// sampling profiler, the default. A type that is not time-sampled
	// (TimeSampled) keeps the stacks from counting towards a bound.
	Type string
}

// ProfileRequest is a request of profiles as a receiver got it: the
// profiles that decoded, as received, and the limits they were decoded
// within. A receiver decodes each with Limits.DecodeProfile and hands the
// request to its consumer with the batches (WithReceivedProfiles); the
// engine logs it (AppendProfileRequest) and replays it with Decode,
// through the same decoders.
type ProfileRequest struct {
	Limits   Limits
	Profiles []ReceivedProfile
}

// DecodeProfile decodes p within l as its format says and gives its
// batches what the request said about them: the service, where they name
// none, and for a Pyroscope /ingest request the time window and period.
// Like every decoder it returns what decoded beside the error of what did
// not. It is the one decoder of received profiles: the receivers' and the
// log's replay (ProfileRequest.Decode). ProfileDecoder.Decode is the same
// with the decoder's buffers kept for the next profile.
func (l Limits) DecodeProfile(p *ReceivedProfile) ([]*ProfileBatch, error) {
	return new(ProfileDecoder).Decode(l, p)
}

// Decode is l.DecodeProfile(p), reusing d's buffers.
func (d *ProfileDecoder) Decode(l Limits, p *ReceivedProfile) ([]*ProfileBatch, error) {
	var bs []*ProfileBatch
	var err error
	switch p.Format {
	case FormatPprof:
		p.texts = &pprofTexts{}
		bs, err = d.decodePprof(l, p.Data, p.Source, p.texts)
	case FormatPyroscopeJFR:
		bs, err = l.DecodePyroscopeJFR(p.Data, p.Labels, p.Source)
	case FormatFolded, FormatLines:
		bs, err = l.DecodeFolded(p.Data, p.Source, p.Format == FormatFolded)
	case FormatOTLPProfiles:
		bs, err = l.DecodeOTLPProfiles(p.Data, p.Source)
	default:
		return nil, fmt.Errorf("decode %s: profile format %d: %w", p.Source, p.Format, ErrMalformed)
	}
	for _, b := range bs {
		p.place(b)
	}
	return bs, err
}

// Decode decodes every profile of r, as replay does: the batches of each
// in order, and the errors of those that did not decode whole.
func (r *ProfileRequest) Decode() ([]*ProfileBatch, error) {
	return new(ProfileDecoder).DecodeRequest(r)
}

// DecodeRequest is r.Decode(), reusing d's buffers.
func (d *ProfileDecoder) DecodeRequest(r *ProfileRequest) ([]*ProfileBatch, error) {
	var out []*ProfileBatch
	var errs []error
	for i := range r.Profiles {
		bs, err := d.Decode(r.Limits, &r.Profiles[i])
		out = append(out, bs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// place sets what the request says about b: its service where the samples
// did not name one, and its time window. A profile that says no time of
// its own (folded stacks) is placed as Pyroscope places every profile,
// from and until defaulting to when the request came, except that without
// from it starts its own duration (austin's) before its end.
func (p *ReceivedProfile) place(b *ProfileBatch) {
	if b.Service == "" {
		b.Service = p.Service
		if b.Namespace == "" {
			b.Namespace = p.Namespace
		}
	}
	w := p.Ingest
	if w == nil {
		return
	}
	// The times as the log keeps them, so that a replay places the
	// profile where the receiver did (no monotonic reading, UTC).
	from, until, now := logTime(w.From), logTime(w.Until), logTime(w.Now)
	switch {
	case b.Start.IsZero():
		end := until
		if end.IsZero() {
			end = now
		}
		b.Start = from
		if b.Start.IsZero() {
			b.Start = end.Add(-b.Duration)
		}
		if end.After(b.Start) {
			b.Duration = end.Sub(b.Start)
		}
	case !from.IsZero():
		b.Start = from
		if until.After(from) {
			b.Duration = until.Sub(from)
		}
	}
	if b.Period == 0 && w.SampleRate > 0 && b.Unit == "nanoseconds" {
		b.Period = int64(time.Second) / w.SampleRate
	}
	if w.Type != "" && (p.Format == FormatFolded || p.Format == FormatLines) && b.SampleType == "samples" {
		b.SampleType, b.Unit = w.Type, ingestUnit(w.Type)
	}
}

// ingestUnit is the unit of the values of an /ingest profile type, as
// Pyroscope's names and units have it.
func ingestUnit(typ string) string {
	switch {
	case strings.HasSuffix(typ, "_space"), strings.HasSuffix(typ, "_bytes"), typ == "bytes":
		return "bytes"
	case strings.HasSuffix(typ, "_duration"), strings.HasSuffix(typ, "_nanoseconds"):
		return "nanoseconds"
	}
	return "count"
}

// logTime is t as AppendProfileRequest writes it and ParseProfileRequest
// reads it back.
func logTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
}

// Masks reports whether m would mask anything in r that r holds beyond
// the batches decoded from it, or may: a label value of a pprof sample
// (any label, not only those evident decodes, by its key as
// Masker.Attribute says), a comment of a pprof profile, a line of folded
// stacks. The texts of a pprof profile are where DecodeProfile found
// them, so a profile it has not decoded is reported as masking, as are
// formats whose texts it does not follow (JFR recordings, OTLP profiles)
// and folded stacks still compressed: whoever logs r must then log its
// batches, redacted, instead.
func (r *ProfileRequest) Masks(m Masker) bool {
	for i := range r.Profiles {
		p := &r.Profiles[i]
		switch p.Format {
		case FormatPprof:
			if p.texts == nil || p.texts.masks(m) {
				return true
			}
		case FormatFolded, FormatLines:
			if hasPrefix(p.Data, gzipMagic) {
				return true
			}
			for line := range bytes.Lines(p.Data) {
				if s := bytesString(line); m.Text(s) != s {
					return true
				}
			}
		default:
			return true
		}
	}
	return false
}

// masks reports whether m masks a label value or a comment of the
// profile.
func (t *pprofTexts) masks(m Masker) bool {
	if t.other || t.strs == nil {
		return true
	}
	// The decoder checked every label's indexes against the string table.
	for _, c := range t.comments {
		if c >= uint64(len(t.strs)) {
			return true
		}
		if s := t.str(c); m.Text(s) != s {
			return true
		}
	}
	// checked[v] is 1 + the key under which string v was last found
	// unmasked: a label repeats on sample after sample.
	checked := make([]uint32, len(t.strs))
	for _, l := range t.labels {
		key, val := l[0], l[1]
		if checked[val] == key+1 {
			continue
		}
		if v := t.str(uint64(val)); m.Attribute(t.str(uint64(key)), v) != v {
			return true
		}
		checked[val] = key + 1
	}
	return false
}

// profileRequestVersion is the version of AppendProfileRequest's encoding,
// its first byte.
const profileRequestVersion = 1

// AppendProfileRequest appends r to dst in the encoding the engine's log
// keeps it in: a version byte, then a protobuf message
//
//	1, 2, 3: Limits.MaxSamples, MaxLocations, MaxStackDepth (varint)
//	4: a profile (repeated), itself
//	   1: format (varint), 2: data, 3: labels, 4: source, 5: service,
//	   6: namespace, 7: the ingest window, itself
//	      1, 2, 3: from, until, now, each {1: unix seconds (zigzag), 2: nanoseconds}, absent when zero
//	      4: sample rate (varint), 5: profile type
//
// ParseProfileRequest reads it back.
func AppendProfileRequest(dst []byte, r *ProfileRequest) []byte {
	dst = append(dst, profileRequestVersion)
	dst = appendVarintField(dst, 1, uint64(r.Limits.MaxSamples))
	dst = appendVarintField(dst, 2, uint64(r.Limits.MaxLocations))
	dst = appendVarintField(dst, 3, uint64(r.Limits.MaxStackDepth))
	for i := range r.Profiles {
		p := &r.Profiles[i]
		dst = protowire.AppendTag(dst, 4, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(p.size()))
		dst = appendVarintField(dst, 1, uint64(p.Format))
		dst = appendBytesField(dst, 2, p.Data)
		dst = appendBytesField(dst, 3, p.Labels)
		dst = appendBytesField(dst, 4, []byte(p.Source))
		dst = appendBytesField(dst, 5, []byte(p.Service))
		dst = appendBytesField(dst, 6, []byte(p.Namespace))
		if w := p.Ingest; w != nil {
			dst = protowire.AppendTag(dst, 7, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(w.size()))
			dst = appendTimeField(dst, 1, w.From)
			dst = appendTimeField(dst, 2, w.Until)
			dst = appendTimeField(dst, 3, w.Now)
			dst = appendVarintField(dst, 4, uint64(w.SampleRate))
			dst = appendBytesField(dst, 5, []byte(w.Type))
		}
	}
	return dst
}

// size is the encoded size of p's message.
func (p *ReceivedProfile) size() int {
	n := varintFieldSize(1, uint64(p.Format)) + bytesFieldSize(2, len(p.Data)) + bytesFieldSize(3, len(p.Labels)) +
		bytesFieldSize(4, len(p.Source)) + bytesFieldSize(5, len(p.Service)) + bytesFieldSize(6, len(p.Namespace))
	if p.Ingest != nil {
		n += 1 + protowire.SizeBytes(p.Ingest.size())
	}
	return n
}

// size is the encoded size of w's message.
func (w *IngestWindow) size() int {
	return timeFieldSize(w.From) + timeFieldSize(w.Until) + timeFieldSize(w.Now) + varintFieldSize(4, uint64(w.SampleRate)) + bytesFieldSize(5, len(w.Type))
}

func appendVarintField(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

func varintFieldSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendBytesField(dst []byte, num protowire.Number, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, b)
}

func bytesFieldSize(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendTimeField(dst []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return dst
	}
	sec, nsec := protowire.EncodeZigZag(t.Unix()), uint64(t.Nanosecond())
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(varintFieldSize(1, sec)+varintFieldSize(2, nsec)))
	dst = appendVarintField(dst, 1, sec)
	return appendVarintField(dst, 2, nsec)
}

func timeFieldSize(t time.Time) int {
	if t.IsZero() {
		return 0
	}
	return 1 + protowire.SizeBytes(varintFieldSize(1, protowire.EncodeZigZag(t.Unix()))+varintFieldSize(2, uint64(t.Nanosecond())))
}

// ParseProfileRequest reads a request AppendProfileRequest wrote. The
// profiles' bytes are sub-slices of b. Fields it does not know are
// skipped; a malformed message or numbers out of range are errors
// (ErrMalformed), and so is a version of 0; a version above this one's
// is ErrNewerVersion.
func ParseProfileRequest(b []byte) (*ProfileRequest, error) {
	if len(b) > 0 && b[0] > profileRequestVersion {
		return nil, fmt.Errorf("profile request: version %d, this evident knows up to %d: %w", b[0], profileRequestVersion, ErrNewerVersion)
	}
	if len(b) == 0 || b[0] != profileRequestVersion {
		v := -1
		if len(b) > 0 {
			v = int(b[0])
		}
		return nil, fmt.Errorf("profile request: version %d, want %d: %w", v, profileRequestVersion, ErrMalformed)
	}
	r := &ProfileRequest{}
	err := forEachField(b[1:], func(f field) error {
		switch f.num {
		case 1, 2, 3:
			n, err := intField(f)
			if err != nil {
				return err
			}
			switch f.num {
			case 1:
				r.Limits.MaxSamples = n
			case 2:
				r.Limits.MaxLocations = n
			default:
				r.Limits.MaxStackDepth = n
			}
		case 4:
			if f.typ != protowire.BytesType {
				return fmt.Errorf("profile: wire type %d", f.typ)
			}
			p, err := parseReceivedProfile(f.b)
			if err != nil {
				return fmt.Errorf("profile %d: %w", len(r.Profiles), err)
			}
			r.Profiles = append(r.Profiles, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile request: %w: %w", ErrMalformed, err)
	}
	return r, nil
}

// intField is a varint field that must hold a non-negative int.
func intField(f field) (int, error) {
	if f.typ != protowire.VarintType || f.v > math.MaxInt32 {
		return 0, fmt.Errorf("field %d: not a count", f.num)
	}
	return int(f.v), nil
}

func parseReceivedProfile(b []byte) (ReceivedProfile, error) {
	var p ReceivedProfile
	err := forEachField(b, func(f field) error {
		if f.num == 1 {
			if f.typ != protowire.VarintType || f.v == 0 || f.v > math.MaxUint8 {
				return fmt.Errorf("format: not a format")
			}
			p.Format = ProfileFormat(f.v)
			return nil
		}
		if f.num > 7 {
			return nil
		}
		if f.typ != protowire.BytesType {
			return fmt.Errorf("field %d: wire type %d", f.num, f.typ)
		}
		switch f.num {
		case 2:
			p.Data = f.b
		case 3:
			p.Labels = f.b
		case 4:
			p.Source = string(f.b)
		case 5:
			p.Service = string(f.b)
		case 6:
			p.Namespace = string(f.b)
		case 7:
			w, err := parseIngestWindow(f.b)
			if err != nil {
				return fmt.Errorf("ingest window: %w", err)
			}
			p.Ingest = &w
		}
		return nil
	})
	if err == nil && p.Format == 0 {
		err = errors.New("no format")
	}
	return p, err
}

func parseIngestWindow(b []byte) (IngestWindow, error) {
	var w IngestWindow
	err := forEachField(b, func(f field) error {
		switch f.num {
		case 1, 2, 3:
			if f.typ != protowire.BytesType {
				return fmt.Errorf("time %d: wire type %d", f.num, f.typ)
			}
			var sec, nsec uint64
			if err := forEachField(f.b, func(g field) error {
				switch {
				case g.num == 1 && g.typ == protowire.VarintType:
					sec = g.v
				case g.num == 2 && g.typ == protowire.VarintType:
					nsec = g.v
				}
				return nil
			}); err != nil {
				return err
			}
			if nsec >= uint64(time.Second) {
				return fmt.Errorf("time %d: %d nanoseconds", f.num, nsec)
			}
			t := time.Unix(protowire.DecodeZigZag(sec), int64(nsec)).UTC()
			switch f.num {
			case 1:
				w.From = t
			case 2:
				w.Until = t
			default:
				w.Now = t
			}
		case 4:
			if f.typ != protowire.VarintType || f.v > math.MaxInt32 {
				return fmt.Errorf("sample rate: not a rate")
			}
			w.SampleRate = int64(f.v)
		case 5:
			if f.typ != protowire.BytesType {
				return fmt.Errorf("profile type: wire type %d", f.typ)
			}
			w.Type = string(f.b)
		}
		return nil
	})
	return w, err
}

// receivedProfilesKey is the context key of WithReceivedProfiles.
type receivedProfilesKey struct{}

// receivedProfiles is a request of profiles and the batches decoded from
// it, known by the address of the first and their number.
type receivedProfiles struct {
	req   *ProfileRequest
	first **ProfileBatch
	n     int
}

// WithReceivedProfiles returns ctx carrying req, the request a receiver
// decoded batches from, so that the consumer of the batches can keep the
// profiles as received (ReceivedProfiles) rather than encode the batches
// again. The bytes of req must not change while ctx is in use.
func WithReceivedProfiles(ctx context.Context, req *ProfileRequest, batches []*ProfileBatch) context.Context {
	if len(batches) == 0 {
		return ctx
	}
	return context.WithValue(ctx, receivedProfilesKey{}, receivedProfiles{req: req, first: &batches[0], n: len(batches)})
}

// ReceivedProfiles returns the request WithReceivedProfiles put in ctx
// when batches are the batches decoded from it, the same slice: a
// consumer in between that split or replaced them makes it report false.
func ReceivedProfiles(ctx context.Context, batches []*ProfileBatch) (*ProfileRequest, bool) {
	r, ok := ctx.Value(receivedProfilesKey{}).(receivedProfiles)
	if !ok || len(batches) != r.n || len(batches) == 0 || &batches[0] != r.first {
		return nil, false
	}
	return r.req, true
}
