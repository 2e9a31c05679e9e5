package kafka

import (
	"bytes"
	"encoding"
	"encoding/gob"
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
// an engine stop at the record instead (errNewerFormat). When this test
// fails, give the format a new version, say so in docs/scaling.md, and
// run it with -update.
func TestGobFormatsPinned(t *testing.T) {
	var b strings.Builder
	for _, f := range []struct {
		format string
		v      any
	}{
		{formatGobSpans, []telemetry.Span(nil)},
		{formatGobProfile, []*telemetry.ProfileBatch(nil)},
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
