package kafka

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evidentsec/evident/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite testdata/gob-formats.golden")

// TestGobFormatsPinned: what the gob formats of the ingest log carry is
// pinned to their versions. gob decodes a value without the fields it
// does not know, so a field added to telemetry.Span or ProfileBatch under
// the same format would be dropped, without a word, by every engine of
// the version before during a rolling upgrade; a new version makes such
// an engine stop at the record instead (errNewerFormat). So is what a
// profile request (profile-request/1) carries, whose reader skips the
// fields it does not know too. When this test fails, give the format a
// new version, say so in docs/scaling.md, and run it with -update.
func TestGobFormatsPinned(t *testing.T) {
	var b strings.Builder
	for _, f := range []struct {
		format string
		v      any
	}{
		{formatGobSpans, []telemetry.Span(nil)},
		{formatGobProfile, []*telemetry.ProfileBatch(nil)},
		// Not gob, but the same holds: ParseProfileRequest skips the
		// fields it does not know, and a field added to what
		// AppendProfileRequest writes would be dropped by the engines of
		// the version before.
		{formatProfileRequest, (*telemetry.ProfileRequest)(nil)},
	} {
		fmt.Fprintf(&b, "%s\n", f.format)
		describeGob(&b, reflect.TypeOf(f.v), map[reflect.Type]bool{})
	}
	golden := filepath.Join("testdata", "gob-formats.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("the gob formats carry other fields than %s says: an engine of the version before would drop them; give the format a new version, then run with -update.\ngot:\n%s", golden, got)
	}
}

// describeGob writes what gob encodes of t: each struct's exported fields
// with their types, once per struct type, in the order gob sends them.
// Types that encode themselves (time.Time) are named, not opened.
func describeGob(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		if t.Kind() == reflect.Map {
			describeGob(b, t.Key(), seen)
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || selfEncoding(t) {
		return
	}
	seen[t] = true
	fmt.Fprintf(b, "  %s\n", t)
	var next []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type.Kind() == reflect.Chan || f.Type.Kind() == reflect.Func {
			continue // gob leaves them out
		}
		fmt.Fprintf(b, "    %s %s\n", f.Name, f.Type)
		next = append(next, f.Type)
	}
	for _, ft := range next {
		describeGob(b, ft, seen)
	}
}

// selfEncoding reports whether gob encodes t by its own methods.
func selfEncoding(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, i := range []reflect.Type{
		reflect.TypeFor[gob.GobEncoder](), reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.TextMarshaler](),
	} {
		if t.Implements(i) || p.Implements(i) {
			return true
		}
	}
	return false
}

// TestGobSpansVersions: a record of spans in gob is read under the
// format this version writes and under the one the versions before
// wrote, whose spans lack the fields added since.
func TestGobSpansVersions(t *testing.T) {
	spans := []telemetry.Span{{
		Service: "poller", TraceID: [16]byte{1}, SpanID: [8]byte{2}, Kind: telemetry.SpanKindClient,
		Attrs: telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "receive"},
		Links: []telemetry.Link{{TraceID: [16]byte{3}, SpanID: [8]byte{4}}}, LinksDropped: 2,
	}}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(spans); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{formatGobSpans, formatGobSpansV1, formatGobSpansV2} {
		t.Run(format, func(t *testing.T) {
			rec, err := decode(&kgo.Record{Topic: "evident-ingest", Key: []byte("poller"), Value: buf.Bytes(), Headers: []kgo.RecordHeader{
				{Key: headerTenant, Value: []byte("default")}, {Key: headerFormat, Value: []byte(format)},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(spans, rec.Spans); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
		})
	}
	if newerFormat(formatGobSpansV1) || newerFormat(formatGobSpansV2) || newerFormat(formatGobSpans) || !newerFormat("gob-spans/4") {
		t.Error("gob-spans/1, /2 and /3 are this version's, /4 a newer one's")
	}
}

// TestSplitTraceRequest: a request split at its spans gives parts within
// the limit that hold, in order, every span with its resource, scope and
// attributes as received; a span too large alone is refused.

// TestDecodeProfileRequest: a record of a profile request decodes to the
// batches its profiles give, those that decode when some do not (as the
// receiver handed them on); one of which nothing decodes is malformed,
// and so is one of another version of the request's encoding: a newer
// evident writes that under a newer format.
func TestDecodeProfileRequest(t *testing.T) {
	folded := telemetry.ReceivedProfile{Format: telemetry.FormatFolded, Data: []byte("main;pay;charge 7\n"), Source: "pay.folded", Service: "pay"}
	bad := telemetry.ReceivedProfile{Format: telemetry.FormatOTLPProfiles, Data: []byte("\x0a\xff\xff"), Source: "bad.otlp", Service: "pay"}
	request := func(ps ...telemetry.ReceivedProfile) []byte {
		return telemetry.AppendProfileRequest(nil, &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: ps})
	}
	tests := []struct {
		name        string
		value       []byte
		wantSources []string
		wantErr     string
	}{
		{"one profile", request(folded), []string{"pay.folded"}, ""},
		{"one of two profiles malformed", request(bad, folded), []string{"pay.folded"}, ""},
		{"no profile decodes", request(bad), nil, "decode OTLP profiles bad.otlp"},
		{"no profile", request(), nil, "no profile"},
		{"not a request", []byte("junk"), nil, "profile request: version 106"},
		{"empty", nil, nil, "version -1"},
		// A newer evident writes a later version under a later format.
		{"a later version", append([]byte{2}, request(folded)[1:]...), nil, "version 2"},
		{"version 0", append([]byte{0}, request(folded)[1:]...), nil, "version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := decode(&kgo.Record{Topic: "evident-ingest", Key: []byte("pay"), Value: tt.value, Headers: []kgo.RecordHeader{
				{Key: headerTenant, Value: []byte("default")}, {Key: headerFormat, Value: []byte(formatProfileRequest)},
			}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, errNewerFormat) {
					t.Fatalf("err = %v, want one saying %q, of damage", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range rec.Profiles {
				got = append(got, b.Source)
			}
			if diff := cmp.Diff(got, tt.wantSources); diff != "" {
				t.Errorf("batches (-got +want):\n%s", diff)
			}
		})
	}
	if newerFormat(formatProfileRequest) || !newerFormat("profile-request/2") {
		t.Error("profile-request/1 is this version's, /2 a newer one's")
	}
}
