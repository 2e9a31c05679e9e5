package telemetry

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/evidentsec/evident/internal/attribution"
)

// DecodeOTLPProfiles decodes an OTLP profiles request
// (ExportProfilesServiceRequest, v1development, as protobuf or OTLP JSON,
// optionally gzipped) into one batch per profile, but for the profiles
// that are the sample types of one recording (a pprof profile converted,
// a Profile per type): of those, one batch of the type DecodePprof would
// weigh them by (docs/architecture.md "Sample types and weights"). The
// service is the resource's service.name (and service.namespace); a
// sample's link gives its SpanID and TraceID.
//
// All batches of one request share Locations, which is the request's
// location table (index 0 is the empty location the format reserves), so
// Sample.Locations are the stack's location indices as sent.
//
// A sample of no weight (values that add up to 0 or less, or neither
// values nor timestamps) is left out: it does not show code that ran. A
// sample with an out-of-range stack, location or link index is dropped
// and reported (*RecordError) with the rest returned; a request that does
// not decode at all returns no batches.
func DecodeOTLPProfiles(data []byte, source string) ([]*ProfileBatch, error) {
	return Limits{}.DecodeOTLPProfiles(data, source)
}

// DecodeOTLPProfiles is DecodeOTLPProfiles within l: a request whose
// dictionary holds more locations or functions than allowed is refused,
// and a profile with more samples dropped, each with an error naming the
// limit that matches ErrTooLarge.
func (l Limits) DecodeOTLPProfiles(data []byte, source string) ([]*ProfileBatch, error) {
	raw, err := maybeGunzip(data, source)
	if err != nil {
		return nil, err
	}
	var pd pprofile.Profiles
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var u pprofile.JSONUnmarshaler
		if pd, err = u.UnmarshalProfiles(raw); err != nil {
			err = cmp.Or(JSONSyntaxError(raw), err)
		}
	} else {
		var u pprofile.ProtoUnmarshaler
		pd, err = u.UnmarshalProfiles(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("decode OTLP profiles %s: %w: %w", source, ErrMalformed, err)
	}
	dict := pd.Dictionary()
	rps := pd.ResourceProfiles()
	if err := l.checkDictionary(source, dict, countProfiles(rps)); err != nil {
		return nil, err
	}
	c := otlpProfileConverter{dict: dict, errs: recordErrors{source: source}, limits: l}
	c.strs = c.dict.StringTable().AsRaw()
	c.locations()
	var out []*ProfileBatch
	var tooLarge error
	for i := 0; i < rps.Len(); i++ {
		rp := rps.At(i)
		attrs := rp.Resource().Attributes()
		var service, namespace string
		if v, ok := attrs.Get("service.name"); ok {
			service = v.AsString()
		}
		if v, ok := attrs.Get("service.namespace"); ok {
			namespace = v.AsString()
		}
		image := resourceImage(attrs)
		sps := rp.ScopeProfiles()
		for j := 0; j < sps.Len(); j++ {
			ps := sps.At(j).Profiles()
			weighed := c.weighing(ps)
			for k := 0; k < ps.Len(); k++ {
				w, ok := weighed[k]
				if !ok {
					continue
				}
				record := fmt.Sprintf("resource_profiles[%d]: scope_profiles[%d]: profiles[%d]", i, j, k)
				if err := l.check("OTLP profiles "+source+": "+record, ps.At(k).Samples().Len(), 0, 0); err != nil {
					if len(c.errs.errs) == 0 && c.errs.more == 0 {
						// The first refusal is kept whole: with no batch
						// left, it is the request's answer.
						tooLarge = err
					}
					c.errs.add(record, err)
					continue
				}
				var counted *sampleCounts
				if w >= 0 {
					counted = countSamples(ps.At(w))
				}
				b, err := c.profile(ps.At(k), record, counted)
				if err != nil {
					c.errs.add(record, err)
					continue
				}
				b.Service, b.Namespace, b.Image, b.Source = service, namespace, image, source
				out = append(out, b)
			}
		}
	}
	if len(out) == 0 && tooLarge != nil {
		return nil, tooLarge
	}
	return out, c.errs.err()
}

// checkDictionary checks the dictionary the n profiles of a request
// share against max_locations for each of them: a Collector's batch holds
// the profiles of many processes, and their locations and functions.
func (l Limits) checkDictionary(source string, dict pprofile.ProfilesDictionary, n int) error {
	if n <= 1 || l.MaxLocations <= 0 {
		return l.check("OTLP profiles "+source, 0, dict.LocationTable().Len(), dict.FunctionTable().Len())
	}
	for _, t := range []struct {
		what string
		len  int
	}{{"locations", dict.LocationTable().Len()}, {"functions", dict.FunctionTable().Len()}} {
		if t.len > n*l.MaxLocations {
			return fmt.Errorf("decode OTLP profiles %s: %d %s in the dictionary of its %d profiles, over max_locations %d for each: %w",
				source, t.len, t.what, n, l.MaxLocations, ErrTooLarge)
		}
	}
	return nil
}

// countProfiles returns the number of profiles of a request.
func countProfiles(rps pprofile.ResourceProfilesSlice) int {
	n := 0
	for i := range rps.Len() {
		sps := rps.At(i).ScopeProfiles()
		for j := range sps.Len() {
			n += sps.At(j).Profiles().Len()
		}
	}
	return n
}

// otlpProfileConverter resolves the dictionary of one request.
type otlpProfileConverter struct {
	dict   pprofile.ProfilesDictionary
	strs   []string
	frames [][]attribution.Frame // per location index
	stacks map[int32][]int32     // stack index → location indices, shared by samples
	errs   recordErrors
	limits Limits
}

func (c *otlpProfileConverter) str(i int32) (string, error) {
	if i < 0 || int(i) >= len(c.strs) {
		return "", fmt.Errorf("string index %d out of range [0,%d)", i, len(c.strs))
	}
	return c.strs[i], nil
}

// locations converts the location table. A function with a bad string
// index is reported once, and a location with lines of bad functions or
// of function indexes out of range once, with the frames of its other
// lines, as DecodePprof does.
func (c *otlpProfileConverter) locations() {
	funcs := c.dict.FunctionTable()
	locs := c.dict.LocationTable()
	fnFrames := make([]attribution.Frame, funcs.Len())
	fnOK := make([]bool, funcs.Len())
	for i := range funcs.Len() {
		fn := funcs.At(i)
		nameIdx := fn.NameStrindex()
		if nameIdx == 0 {
			nameIdx = fn.SystemNameStrindex()
		}
		name, err := c.str(nameIdx)
		if err == nil {
			fnFrames[i].Function = name
			fnFrames[i].File, err = c.str(fn.FilenameStrindex())
		}
		if err != nil {
			c.errs.addf(err, "function %d", i)
			continue
		}
		fnOK[i] = true
	}
	c.frames = make([][]attribution.Frame, locs.Len())
	c.stacks = make(map[int32][]int32)
	for i := 0; i < locs.Len(); i++ {
		lines := locs.At(i).Lines()
		frames := make([]attribution.Frame, 0, lines.Len())
		var badLine error
		var badLines int
		for j := 0; j < lines.Len(); j++ {
			fi := lines.At(j).FunctionIndex()
			if fi < 0 || int(fi) >= funcs.Len() {
				if badLines == 0 {
					badLine = fmt.Errorf("line %d: function index %d out of range [0,%d)", j, fi, funcs.Len())
				}
				badLines++
				continue
			}
			if fnOK[fi] {
				frames = append(frames, fnFrames[fi])
			}
		}
		if badLines > 0 {
			c.errs.addf(moreLines(badLine, badLines-1), "location %d", i)
		}
		c.frames[i] = frames
	}
}

// recording is what the profiles of one recording have in common: a pprof
// profile with several sample types (CPU profiles count samples and CPU
// time, heap profiles allocated and in-use objects and space) is carried
// as a Profile per sample type since proto v1.8.0, each with the pprof's
// time, duration and period.
type recording struct {
	time, duration uint64
	periodType     [2]string
	period         int64
}

// weighing returns the profiles of a scope to decode, by index, each with
// the profile that counts its samples (-1 for none). Of the profiles of
// one recording only the sample type DecodePprof weighs a pprof's samples
// by is decoded (chooseSampleType), counted by the one that counts the
// same samples: decoding every one counted each sample once per type, a
// CPU profile's twice, a heap profile's four times, in-use space among
// them. Profiles of the same type are not of one recording, and a profile
// whose types do not resolve is decoded alone, to report its error.
func (c *otlpProfileConverter) weighing(ps pprofile.ProfilesSlice) map[int]int {
	out := make(map[int]int, ps.Len())
	groups := map[recording][]int{}
	var order []recording
	for k := range ps.Len() {
		p := ps.At(k)
		ptyp, err1 := c.str(p.PeriodType().TypeStrindex())
		punit, err2 := c.str(p.PeriodType().UnitStrindex())
		if err1 != nil || err2 != nil {
			out[k] = -1
			continue
		}
		r := recording{uint64(p.Time()), p.DurationNano(), [2]string{ptyp, punit}, p.Period()}
		if _, ok := groups[r]; !ok {
			order = append(order, r)
		}
		groups[r] = append(groups[r], k)
	}
	for _, r := range order {
		g := groups[r]
		types := make([][2]string, len(g))
		resolved := true
		for i, k := range g {
			typ, err1 := c.str(ps.At(k).SampleType().TypeStrindex())
			unit, err2 := c.str(ps.At(k).SampleType().UnitStrindex())
			types[i], resolved = [2]string{typ, unit}, resolved && err1 == nil && err2 == nil
		}
		// Two profiles of one type are two recordings that do not say
		// when they were made, not one.
		if len(g) == 1 || !resolved || hasRepeat(types) {
			for _, k := range g {
				out[k] = -1
			}
			continue
		}
		vi, ci := chooseSampleType(types, "")
		out[g[vi]] = -1
		if ci >= 0 && ci != vi {
			out[g[vi]] = g[ci]
		}
	}
	return out
}

// hasRepeat reports whether a sample type is in types more than once.
func hasRepeat(types [][2]string) bool {
	for i, t := range types {
		if slices.Contains(types[:i], t) {
			return true
		}
	}
	return false
}

// sampleKey is the identity of a sample (profiles.proto): its stack, its
// attributes as a set, and its link.
func sampleKey(s pprofile.Sample) string {
	attrs := s.AttributeIndices().AsRaw()
	slices.Sort(attrs)
	b := make([]byte, 0, 8+4*len(attrs))
	b = binary.LittleEndian.AppendUint32(b, uint32(s.StackIndex()))
	b = binary.LittleEndian.AppendUint32(b, uint32(s.LinkIndex()))
	for _, a := range slices.Compact(attrs) {
		b = binary.LittleEndian.AppendUint32(b, uint32(a))
	}
	return string(b)
}

// sampleCounts are the counts of the samples of a profile that counts
// them, by position and by identity.
type sampleCounts struct {
	keys []string
	n    []int64
	// byKey holds the count of each identity, -1 for one more than one
	// sample has: duplicates SHOULD NOT occur, but a converter that
	// leaves out pprof's numeric labels makes them.
	byKey map[string]int64
}

// countSamples returns the samples a count profile counts.
func countSamples(p pprofile.Profile) *sampleCounts {
	samples := p.Samples()
	c := &sampleCounts{keys: make([]string, samples.Len()), n: make([]int64, samples.Len()), byKey: make(map[string]int64, samples.Len())}
	for i := range samples.Len() {
		s := samples.At(i)
		n := int64(s.TimestampsUnixNano().Len())
		if vals := s.Values(); vals.Len() > 0 {
			n = 0
			for j := range vals.Len() {
				n += vals.At(j)
			}
		}
		key := sampleKey(s)
		c.keys[i], c.n[i] = key, n
		if _, dup := c.byKey[key]; dup {
			n = -1
		}
		c.byKey[key] = n
	}
	return c
}

// count returns the count of the sample at position i, whose identity is
// key: the one at the same position when it is the same sample, as
// converters write them, else the one sample of that identity.
func (c *sampleCounts) count(i int, key string) (int64, bool) {
	if c == nil {
		return 0, false
	}
	if i < len(c.keys) && c.keys[i] == key {
		return c.n[i], true
	}
	n, ok := c.byKey[key]
	return n, ok && n >= 0
}

// profile converts one profile; a sample counted counts, from another
// profile of its recording, has that count.
func (c *otlpProfileConverter) profile(p pprofile.Profile, record string, counted *sampleCounts) (*ProfileBatch, error) {
	typ, err := c.str(p.SampleType().TypeStrindex())
	if err != nil {
		return nil, fmt.Errorf("sample_type: %w", err)
	}
	unit, err := c.str(p.SampleType().UnitStrindex())
	if err != nil {
		return nil, fmt.Errorf("sample_type: %w", err)
	}
	periodUnit, err := c.str(p.PeriodType().UnitStrindex())
	if err != nil {
		return nil, fmt.Errorf("period_type: %w", err)
	}
	b := &ProfileBatch{
		SampleType: typ,
		Unit:       unit,
		Period:     p.Period(),
		Duration:   time.Duration(p.DurationNano()),
		Locations:  c.frames,
	}
	if p.Time() != 0 {
		b.Start = p.Time().AsTime().UTC()
	}
	perPeriod := unit != "count" && b.Period > 0 && periodUnit == unit
	stacks, links := c.dict.StackTable(), c.dict.LinkTable()
	samples := p.Samples()
	b.Samples = make([]Sample, 0, samples.Len())
	for i := 0; i < samples.Len(); i++ {
		s := samples.At(i)
		si := s.StackIndex()
		if si < 0 || int(si) >= stacks.Len() {
			c.errs.addf(fmt.Errorf("stack index %d out of range [0,%d)", si, stacks.Len()), "%s: sample %d", record, i)
			continue
		}
		locs, ok := c.stacks[si]
		if !ok {
			locs = stacks.At(int(si)).LocationIndices().AsRaw()
			for _, li := range locs {
				if li < 0 || int(li) >= len(c.frames) {
					locs = nil
					break
				}
			}
			c.stacks[si] = c.limits.depth(locs)
			locs = c.stacks[si]
		}
		if locs == nil && stacks.At(int(si)).LocationIndices().Len() > 0 {
			c.errs.addf(fmt.Errorf("stack %d has a location index out of range [0,%d)", si, len(c.frames)), "%s: sample %d", record, i)
			continue
		}
		out := Sample{Locations: locs}
		if li := s.LinkIndex(); li != 0 {
			if li < 0 || int(li) >= links.Len() {
				c.errs.addf(fmt.Errorf("link index %d out of range [0,%d)", li, links.Len()), "%s: sample %d", record, i)
				continue
			}
			l := links.At(int(li))
			if id := l.SpanID(); !id.IsEmpty() {
				out.SpanID = hex.EncodeToString(id[:])
			}
			if id := l.TraceID(); !id.IsEmpty() {
				out.TraceID = hex.EncodeToString(id[:])
			}
		}
		// values and timestamps are parallel; with timestamps alone each
		// one counts as a sample (profiles.proto).
		vals, n := s.Values(), int64(s.TimestampsUnixNano().Len())
		for j := 0; j < vals.Len(); j++ {
			out.Value += vals.At(j)
		}
		switch {
		case vals.Len() == 0:
			out.Count = n
			if perPeriod {
				out.Value = n * b.Period
			} else {
				out.Value = n
			}
		case unit == "count":
			out.Count = out.Value
		case perPeriod && out.Value > 0:
			out.Count = max((out.Value+b.Period/2)/b.Period, 1)
		case out.Value > 0:
			out.Count = max(n, 1)
		}
		if counted != nil {
			if n, ok := counted.count(i, sampleKey(s)); ok {
				out.Count = n
			}
		}
		if out.Count <= 0 {
			// No weight, no sign that the code ran in the window (a
			// heap profile's stacks of memory still in use with no
			// allocation since the last).
			continue
		}
		b.Samples = append(b.Samples, out)
	}
	return b, nil
}
