package attribution

import (
	"testing"
)

// benchFrames returns the distinct frames of the helper's Go profiles plus
// frames of the other languages: a service's working set.
func benchFrames(b *testing.B) []Frame {
	b.Helper()
	var frames []Frame
	for _, name := range goProfiles {
		frames = append(frames, profileFrames(b, name)...)
	}
	return append(frames,
		Frame{"org/apache/logging/log4j/core/lookup/JndiLookup.lookup", ""},
		Frame{"org/example/rideshare/OrderService$$Lambda$669.0x0000000800fd7318.run", ""},
		Frame{"java.util.concurrent.ThreadPoolExecutor$Worker.run", ""},
		Frame{"load", "yaml/__init__.py"},
		Frame{"send", "/usr/lib/python3.12/site-packages/requests/adapters.py"},
		Frame{"debounce", "/app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/lodash.js"},
		Frame{"parse", "file:///app/node_modules/qs/lib/parse.js"},
		Frame{"[unknown]", ""},
	)
}

// BenchmarkAttributeCached measures the hot path: every frame of every
// sample, with the service's frames already cached. It must not allocate.
func BenchmarkAttributeCached(b *testing.B) {
	frames := benchFrames(b)
	a := New(Config{})
	for _, f := range frames {
		a.Attribute(f)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.Attribute(frames[i%len(frames)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkAttributeCachedParallel is the hot path under ingest workers
// sharing one Attributor.
func BenchmarkAttributeCachedParallel(b *testing.B) {
	frames := benchFrames(b)
	a := New(Config{})
	for _, f := range frames {
		a.Attribute(f)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a.Attribute(frames[i%len(frames)])
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkAttributeCold measures the first sight of a frame: parsing and
// caching it.
func BenchmarkAttributeCold(b *testing.B) {
	frames := benchFrames(b)
	cfg := Config{GoModules: []string{"example.com/attrdemo/v2"}}
	a := New(cfg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(frames)
		if k == 0 && i > 0 {
			b.StopTimer()
			a = New(cfg)
			b.StartTimer()
		}
		a.Attribute(frames[k])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkMatches measures matching an attributed frame against a record's
// symbol, done for every vulnerable symbol of the frame's package.
func BenchmarkMatches(b *testing.B) {
	fn, _ := New(Config{}).Attribute(Frame{"net/http.(*Server).ListenAndServe", goroot + "net/http/server.go"})
	b.ReportAllocs()
	for b.Loop() {
		if !fn.Matches("net/http", "Server.ListenAndServe") || fn.Matches("net/http", "Server.Serve") {
			b.Fatal("wrong match")
		}
	}
}
