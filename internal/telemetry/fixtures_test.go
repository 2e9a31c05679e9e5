package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/grafana/pyroscope-go/godeltaprof"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

var update = flag.Bool("update", false, "regenerate testdata fixtures and golden files")

// TestGenerateFixtures writes the fixtures in testdata with the real
// producers: runtime/pprof for Go profiles, google/pprof's profile package
// for the JFR-, Python- and Node-shaped profiles Pyroscope serves, pdata
// for OTLP traces and profiles. Run with -update.
func TestGenerateFixtures(t *testing.T) {
	if !*update {
		t.Skip("fixtures are regenerated with -update")
	}
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if len(data) > 100<<10 {
			t.Errorf("%s is %d bytes; keep fixtures under 100 KB", name, len(data))
		}
	}
	write("go-cpu.pb.gz", goCPUProfile(t))
	write("go-cpu-busy.pb.gz", goBusyCPUProfile(t))
	write("go-allocs.pb.gz", goAllocsProfile(t))
	write("go-heap-delta.pb.gz", goHeapDeltaProfile(t))
	write("go-mutex.pb.gz", goMutexProfile(t))
	for name, p := range pyroscopeShapedProfiles() {
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			t.Fatal(err)
		}
		write(name, buf.Bytes())
	}

	reqs := fixtureTraces()
	all := ptrace.NewTraces()
	var lines [][]byte
	for _, td := range reqs {
		js, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, js)
		td.ResourceSpans().MoveAndAppendTo(all.ResourceSpans())
	}
	pb, err := ptraceotlp.NewExportRequestFromTraces(all).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	write("traces.pb", pb)
	write("traces.jsonl", append(bytes.Join(lines, []byte("\n")), '\n'))
	bad := make([][]byte, len(lines))
	copy(bad, lines)
	bad[2] = lines[2][:len(lines[2])/2] // a line cut short, as by a crash mid-write
	write("traces-bad-line3.jsonl", append(bytes.Join(bad, []byte("\n")), '\n'))

	allJSON, err := ptraceotlp.NewExportRequestFromTraces(all).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := tempoJSON(t, allJSON)
	write("tempo-v1.json", v1)
	write("tempo-v2.json", v2)

	pd := fixtureProfiles(t)
	ppb, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	write("profiles.pb", ppb)
	pjs, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	write("profiles.json", pjs)
}

var spinSink uint64

// spin burns CPU in a named function so that it shows in the profile.
//
//go:noinline
func spin(d time.Duration) {
	var n uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 10000 {
			n += uint64(i) * 2654435761
		}
	}
	spinSink += n
}

// goCPUProfile profiles this process while it runs work under the pprof
// labels otel-profiling-go sets on a span's goroutine.
func goCPUProfile(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Fatal(err)
	}
	labels := pprof.Labels("span_id", "eee19b7ec3c1b174", "span_name", "GET /cart/{id}", "trace_id", "5b8efff798038103d269b633813fc60c")
	pprof.Do(context.Background(), labels, func(context.Context) { spin(400 * time.Millisecond) })
	spin(200 * time.Millisecond)
	pprof.StopCPUProfile()
	return buf.Bytes()
}

// goBusyCPUProfile profiles this process for 2 s while it does what a
// service's own code and its modules do: decode profiles with this
// package and with google/pprof, encode and decode JSON, match regular
// expressions, compress. Its frames are spread over hundreds of functions
// of the standard library and of modules in the module cache, as a real
// service's are, where goCPUProfile's are few: the pprof benchmarks' real
// mid-size input.
func goBusyCPUProfile(t *testing.T) []byte {
	input := syntheticProfile(200, 16, 150)
	re := regexp.MustCompile(`github\.com/acme/mod(\d+)/pkg(\d+)\.\(\*T\d+\)\.Method(\d+)`)
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		if _, err := DecodePprof(input, "busy"); err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(bytes.NewReader(input))
		if err != nil {
			t.Fatal(err)
		}
		text, err := json.Marshal(p.Function)
		if err != nil {
			t.Fatal(err)
		}
		var back []map[string]any
		if err := json.Unmarshal(text, &back); err != nil {
			t.Fatal(err)
		}
		spinSink += uint64(len(re.FindAllSubmatchIndex(text, -1)))
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(text)
		zw.Close()
	}
	pprof.StopCPUProfile()
	return buf.Bytes()
}

var sink [][]byte

//go:noinline
func allocate(n int) {
	for i := range n {
		sink = append(sink, make([]byte, 1024+i%512))
	}
}

func goAllocsProfile(t *testing.T) []byte {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 4096
	defer func() { runtime.MemProfileRate = old }()
	allocate(20000)
	sink = nil
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var retained [][]byte

// retain allocates memory that stays live.
//
//go:noinline
func retain(n int) {
	for range n {
		retained = append(retained, make([]byte, 8192))
	}
}

// goHeapDeltaProfile is the second heap profile pyroscope-go sends
// (godeltaprof): allocated space and objects since the first, in-use
// space and objects as they are. retain's memory, allocated before the
// first and still live, is in it with no allocation: the code did not run
// in its window.
func goHeapDeltaProfile(t *testing.T) []byte {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 4096
	defer func() { runtime.MemProfileRate = old }()
	retain(200)
	// A record is published by the garbage collections after it.
	runtime.GC()
	runtime.GC()
	hp := godeltaprof.NewHeapProfiler()
	if err := hp.Profile(io.Discard); err != nil {
		t.Fatal(err)
	}
	allocate(2000)
	sink = nil
	runtime.GC()
	runtime.GC()
	var buf bytes.Buffer
	if err := hp.Profile(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var contended struct {
	sync.Mutex
	n int
}

// contend takes a mutex other goroutines hold, n times.
//
//go:noinline
func contend(n int) {
	for range n {
		contended.Lock()
		contended.n++
		for range 2000 {
			spinSink++
		}
		contended.Unlock()
	}
}

// goMutexProfile is runtime/pprof's mutex profile (contentions count,
// delay nanoseconds) of four goroutines contending in contend, each
// contention recorded: the stacks where they waited, many times each.
func goMutexProfile(t *testing.T) []byte {
	old := runtime.SetMutexProfileFraction(1)
	defer runtime.SetMutexProfileFraction(old)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			contend(5000)
		}()
	}
	wg.Wait()
	var buf bytes.Buffer
	if err := pprof.Lookup("mutex").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pyroscopeShapedProfiles builds profiles as Pyroscope serves them for
// other runtimes (protocols.md §8): JFR converted by jfr-parser (class
// names with '/', no file names, span labels as profile_id), py-spy via
// pyroscope-rs (short file names, samples/count), and @datadog/pprof wall
// profiles from Node (absolute script paths, sample/count + wall time).
func pyroscopeShapedProfiles() map[string]*profile.Profile {
	type frame struct{ fn, file string }
	build := func(types []*profile.ValueType, period *profile.ValueType, periodV int64, stacks [][]frame, values [][]int64, labels []map[string][]string) *profile.Profile {
		p := &profile.Profile{SampleType: types, PeriodType: period, Period: periodV, TimeNanos: 1_700_000_000_000_000_000, DurationNanos: 10e9}
		funcs := map[frame]*profile.Function{}
		locs := map[frame]*profile.Location{}
		for i, st := range stacks {
			s := &profile.Sample{Value: values[i]}
			if labels != nil {
				s.Label = labels[i]
			}
			for _, fr := range st {
				loc, ok := locs[fr]
				if !ok {
					fn, ok := funcs[fr]
					if !ok {
						fn = &profile.Function{ID: uint64(len(funcs) + 1), Name: fr.fn, SystemName: fr.fn, Filename: fr.file}
						funcs[fr] = fn
						p.Function = append(p.Function, fn)
					}
					loc = &profile.Location{ID: uint64(len(locs) + 1), Line: []profile.Line{{Function: fn, Line: int64(10 + len(locs))}}}
					locs[fr] = loc
					p.Location = append(p.Location, loc)
				}
				s.Location = append(s.Location, loc)
			}
			p.Sample = append(p.Sample, s)
		}
		return p
	}
	cpuNS := &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}
	jfr := build([]*profile.ValueType{cpuNS}, cpuNS, 10_000_000,
		[][]frame{
			{{"org/apache/logging/log4j/core/lookup/JndiLookup.lookup", ""}, {"org/apache/logging/log4j/core/lookup/StrSubstitutor.resolveVariable", ""}, {"com/example/shop/CartController.get", ""}},
			{{"java/util/HashMap.get", ""}, {"com/example/shop/CartController.get", ""}},
			{{"org/example/rideshare/OrderService$$Lambda$_.run", ""}},
		},
		[][]int64{{30_000_000}, {10_000_000}, {20_000_000}},
		[]map[string][]string{
			{"profile_id": {"00f067aa0ba902b7"}, "span_name": {"GET /cart"}, "trace_id": {"4bf92f3577b34da6a3ce929d0e0e4736"}},
			nil,
			{"profile_id": {"00f067aa0ba902b8"}, "span_name": {"ride"}},
		})
	python := build([]*profile.ValueType{{Type: "samples", Unit: "count"}}, cpuNS, 10_000_000,
		[][]frame{
			{{"dumps", "json/encoder.py"}, {"handle", "app/views.py"}, {"<module>", "main.py"}},
			{{"load", "yaml/__init__.py"}, {"handle", "app/views.py"}, {"<module>", "main.py"}},
		},
		[][]int64{{7}, {3}},
		[]map[string][]string{{"service_name": {"orders-py"}}, {"service_name": {"orders-py"}}})
	node := build([]*profile.ValueType{{Type: "sample", Unit: "count"}, {Type: "wall", Unit: "nanoseconds"}}, &profile.ValueType{Type: "wall", Unit: "nanoseconds"}, 10_000_000,
		[][]frame{
			{{"parse", "/srv/app/node_modules/qs/lib/parse.js"}, {"(anonymous)", "/srv/app/server.js"}},
			{{"template", "/srv/app/node_modules/lodash/lodash.js"}, {"render", "/srv/app/server.js"}},
		},
		[][]int64{{4, 40_000_000}, {1, 10_000_000}},
		[]map[string][]string{{"service_name": {"web"}}, {"service_name": {"api"}}})
	return map[string]*profile.Profile{"jfr-cpu.pb.gz": jfr, "python-cpu.pb.gz": python, "node-wall.pb.gz": node}
}

func traceID(b byte) pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func spanID(b byte) pcommon.SpanID {
	var id pcommon.SpanID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// fixtureTraces returns five export requests covering the span kinds and
// the current and deprecated semantic-convention names evident maps.
func fixtureTraces() []ptrace.Traces {
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	type span struct {
		id, parent byte
		kind       ptrace.SpanKind
		name       string
		status     ptrace.StatusCode
		attrs      map[string]any
		// links are the trace and span of each span it links to;
		// droppedLinks those its SDK dropped.
		links        [][2]byte
		droppedLinks uint32
	}
	mk := func(service, namespace string, tid byte, spans ...span) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		if namespace != "" {
			rs.Resource().Attributes().PutStr("service.namespace", namespace)
		}
		rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		for i, s := range spans {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(traceID(tid))
			sp.SetSpanID(spanID(s.id))
			if s.parent != 0 {
				sp.SetParentSpanID(spanID(s.parent))
			}
			sp.SetKind(s.kind)
			sp.SetName(s.name)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i)*time.Millisecond + 1234567)))
			sp.Status().SetCode(s.status)
			if err := sp.Attributes().FromRaw(s.attrs); err != nil {
				panic(err)
			}
			for _, l := range s.links {
				link := sp.Links().AppendEmpty()
				link.SetTraceID(traceID(l[0]))
				link.SetSpanID(spanID(l[1]))
				link.Attributes().PutStr("messaging.message.id", "m-42")
			}
			sp.SetDroppedLinksCount(s.droppedLinks)
		}
		return td
	}
	return []ptrace.Traces{
		mk("checkout", "shop", 0x10,
			span{id: 0x20, kind: ptrace.SpanKindServer, name: "GET /cart/{id}", attrs: map[string]any{
				"http.request.method": "GET", "http.route": "/cart/{id}", "url.path": "/cart/42", "url.query": "full=1",
				"http.response.status_code": 200, "user_agent.original": "curl/8.5.0", "client.address": "10.0.0.7",
				"server.address": "checkout.shop", "server.port": 8080,
				"http.request.header.x-forwarded-for": []any{"203.0.113.9", "10.0.0.1"},
				"http.request.header.Content-Type":    []any{"application/json"},
			}},
			span{id: 0x21, parent: 0x20, kind: ptrace.SpanKindClient, name: "SELECT shop.orders", attrs: map[string]any{
				"db.system.name": "postgresql", "db.namespace": "shop", "db.collection.name": "orders",
				"db.query.text": "SELECT * FROM orders WHERE id = $1", "db.operation.name": "SELECT",
				"server.address": "db.internal", "server.port": 5432, "db.system": "ignored-old-name",
			}}),
		mk("checkout", "shop", 0x30,
			span{id: 0x40, kind: ptrace.SpanKindServer, name: "POST /pay", attrs: map[string]any{
				"http.method": "POST", "http.target": "/pay?retry=1", "http.status_code": 503,
				"net.host.name": "checkout.shop", "net.host.port": 80, "net.peer.name": "lb.internal",
				"http.user_agent": "okhttp/4.12",
			}},
			span{id: 0x41, parent: 0x40, kind: ptrace.SpanKindClient, name: "GET", status: ptrace.StatusCodeError, attrs: map[string]any{
				"http.method": "GET", "http.url": "https://payments.internal:443/v1/charge", "net.peer.name": "payments.internal",
				"net.peer.port": 443, "peer.service": "payments", "http.status_code": "502",
			}}),
		mk("payments", "", 0x30,
			span{id: 0x50, parent: 0x41, kind: ptrace.SpanKindServer, name: "/payments.v1.Charges/Charge", attrs: map[string]any{
				"rpc.system": "grpc", "rpc.service": "payments.v1.Charges", "rpc.method": "Charge", "server.port": 9090,
				"network.peer.address": "10.0.0.9",
			}},
			span{id: 0x51, parent: 0x50, kind: ptrace.SpanKindClient, name: "GET", attrs: map[string]any{
				"db.system": "redis", "db.statement": "GET charge:42", "db.operation": "GET", "db.name": "0",
				"net.peer.name": "cache.internal", "net.peer.port": 6379,
			}}),
		mk("payments", "", 0x30,
			span{id: 0x52, parent: 0x50, kind: ptrace.SpanKindProducer, name: "charges publish", attrs: map[string]any{
				"messaging.system": "kafka", "messaging.destination.name": "charges", "server.address": "kafka:9092",
			}},
			span{id: 0x53, parent: 0x50, kind: ptrace.SpanKindInternal, name: "upload receipt", attrs: map[string]any{
				"aws.s3.bucket": "receipts", "code.function": "Upload", "code.namespace": "github.com/acme/payments/receipt",
			}}),
		mk("notifier", "shop", 0x60,
			// A process span that starts a trace of its own and links to
			// the message's creation context, the PRODUCER span.
			span{id: 0x70, kind: ptrace.SpanKindConsumer, name: "charges process", attrs: map[string]any{
				"messaging.system": "kafka", "messaging.destination": "charges", "code.function.name": "main.handleCharge",
				"code.function": "ignored-old-name", "rpc.system.name": "connectrpc",
			}, links: [][2]byte{{0x30, 0x52}}, droppedLinks: 2}),
	}
}

// tempoJSON turns OTLP JSON into what Tempo's /api/traces (v1) and
// /api/v2/traces return (protocols.md §4): gogo jsonpb output, so ids in
// base64 and enums by name; v1 renames resourceSpans to batches, v2 wraps
// the trace and adds query metrics (and is written indented here, as a
// user saving it from a browser would).
func tempoJSON(t *testing.T, otlp []byte) (v1, v2 []byte) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(otlp))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	kinds := []string{"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"}
	codes := []string{"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch k {
				case "traceId", "spanId", "parentSpanId":
					b, err := hex.DecodeString(e.(string))
					if err != nil {
						t.Fatal(err)
					}
					x[k] = base64.StdEncoding.EncodeToString(b)
				case "kind":
					n, _ := e.(json.Number).Int64()
					x[k] = kinds[n]
				case "code":
					n, _ := e.(json.Number).Int64()
					x[k] = codes[n]
				default:
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	b1, err := json.Marshal(map[string]any{"batches": doc["resourceSpans"]})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := json.MarshalIndent(map[string]any{
		"trace":   doc,
		"metrics": map[string]any{"inspectedBytes": "48213", "completedJobs": 1, "totalJobs": 1},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b1, b2
}

// newProfilesDictionary returns profiles whose dictionary holds the zero
// value at index 0 of every table (profiles.proto), and a function that
// adds a string to its string table and returns its index.
func newProfilesDictionary(t testing.TB) (pprofile.Profiles, func(string) int32) {
	t.Helper()
	pd := pprofile.NewProfiles()
	dict := pd.Dictionary()
	str := func(s string) int32 {
		i, err := pprofile.SetString(dict.StringTable(), s)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	str("")
	dict.MappingTable().AppendEmpty()
	dict.LocationTable().AppendEmpty()
	dict.FunctionTable().AppendEmpty()
	dict.LinkTable().AppendEmpty()
	dict.StackTable().AppendEmpty()
	dict.AttributeTable().AppendEmpty()
	return pd, str
}

// fixtureProfiles builds an OTLP profiles request with two services, one
// of whose samples links to a span.
func fixtureProfiles(t *testing.T) pprofile.Profiles {
	pd, str := newProfilesDictionary(t)
	dict := pd.Dictionary()
	fn := func(name, file string) int32 {
		f := pprofile.NewFunction()
		f.SetNameStrindex(str(name))
		f.SetSystemNameStrindex(str(name))
		f.SetFilenameStrindex(str(file))
		i, err := pprofile.SetFunction(dict.FunctionTable(), f)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	loc := func(fns ...int32) int32 {
		l := pprofile.NewLocation()
		for _, f := range fns {
			l.Lines().AppendEmpty().SetFunctionIndex(f)
		}
		i, err := pprofile.SetLocation(dict.LocationTable(), l)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	stack := func(locs ...int32) int32 {
		s := pprofile.NewStack()
		s.LocationIndices().FromRaw(locs)
		i, err := pprofile.SetStack(dict.StackTable(), s)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	yaml := fn("gopkg.in/yaml%2ev3.Unmarshal", "gopkg.in/yaml.v3@v3.0.1/yaml.go")
	decode := fn("gopkg.in/yaml%2ev3.(*decoder).unmarshal", "gopkg.in/yaml.v3@v3.0.1/decode.go")
	handler := fn("main.handle", "example.com/app/main.go")
	// decode inlined into Unmarshal: callee first.
	l1 := loc(decode, yaml)
	l2 := loc(handler)
	l3 := loc(fn("runtime.mallocgc", "runtime/malloc.go"))
	s1 := stack(l1, l2)
	s2 := stack(l3, l2)
	link := pprofile.NewLink()
	link.SetTraceID(pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c})
	link.SetSpanID(pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74})
	li, err := pprofile.SetLink(dict.LinkTable(), link)
	if err != nil {
		t.Fatal(err)
	}
	start := pcommon.NewTimestampFromTime(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	for _, svc := range []struct {
		name, ns string
		typ      string
		unit     string
	}{{"checkout", "shop", "cpu", "nanoseconds"}, {"payments", "", "samples", "count"}} {
		rp := pd.ResourceProfiles().AppendEmpty()
		rp.Resource().Attributes().PutStr("service.name", svc.name)
		if svc.ns != "" {
			rp.Resource().Attributes().PutStr("service.namespace", svc.ns)
		}
		p := rp.ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
		p.SampleType().SetTypeStrindex(str(svc.typ))
		p.SampleType().SetUnitStrindex(str(svc.unit))
		p.PeriodType().SetTypeStrindex(str("cpu"))
		p.PeriodType().SetUnitStrindex(str("nanoseconds"))
		p.SetPeriod(10_000_000)
		p.SetTime(start)
		p.SetDurationNano(uint64(10 * time.Second))
		s := p.Samples().AppendEmpty()
		s.SetStackIndex(s1)
		s.SetLinkIndex(li)
		if svc.unit == "count" {
			s.Values().FromRaw([]int64{3})
		} else {
			s.Values().FromRaw([]int64{20_000_000, 10_000_000})
			s.TimestampsUnixNano().FromRaw([]uint64{uint64(start), uint64(start) + 1e9})
		}
		s = p.Samples().AppendEmpty()
		s.SetStackIndex(s2)
		s.TimestampsUnixNano().FromRaw([]uint64{uint64(start) + 2e9})
	}
	return pd
}

// readFixture reads testdata/name.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output; rerun with -update if the change is intended\ngot:\n%s", name, got)
	}
}

// gzipBytes compresses data.
func gzipBytes(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// spanText renders spans one per line for golden files, ids in hex.
func spanText(spans []Span) []byte {
	var b strings.Builder
	for _, s := range spans {
		a := attrsText(s.Attrs)
		fmt.Fprintf(&b, "%s/%s %x %x %x %s %q %s..%s err=%v %s", s.Service, s.Namespace, s.TraceID, s.SpanID, s.ParentSpanID,
			s.Kind, s.Name, s.Start.Format(time.RFC3339Nano), s.End.Format(time.RFC3339Nano), s.Error, a)
		for _, l := range s.Links {
			fmt.Fprintf(&b, " link=%x/%x", l.TraceID, l.SpanID)
		}
		if s.LinksDropped > 0 {
			fmt.Fprintf(&b, " links_dropped=%d", s.LinksDropped)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// attrsText renders the set fields of a.
func attrsText(a Attrs) string {
	var parts []string
	v := reflect.ValueOf(a)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.IsZero() {
			continue
		}
		if f.Kind() == reflect.Map {
			keys := slices.Sorted(maps.Keys(a.RequestHeaders))
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("header[%s]=%q", k, a.RequestHeaders[k]))
			}
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%q", v.Type().Field(i).Name, fmt.Sprint(f.Interface())))
	}
	return strings.Join(parts, " ")
}
