package vulndb

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb/vulndbtest"
)

func TestSnapshot(t *testing.T) {
	p := vulndbtest.GoSnapshot(t)
	db, problems, err := Load(context.Background(), Options{Sources: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("problem in the real snapshot: %v", pr)
	}
	s := db.Stats()
	if s.Records != 4291 || s.Ecosystems[osv.EcosystemGo].Records != 4291 {
		t.Errorf("Records = %d (Go %d), want 4291", s.Records, s.Ecosystems[osv.EcosystemGo].Records)
	}
	if s.Withdrawn != 17 {
		t.Errorf("Withdrawn = %d, want 17", s.Withdrawn)
	}
	if s.WithSymbols < 900 {
		t.Errorf("WithSymbols = %d, want the ~950 records with symbols", s.WithSymbols)
	}

	tests := []struct {
		name, pkg, version, wantID string
		want                       bool
	}{
		{"net/http HTTP/2 DoS in go1.18.5", "stdlib", "go1.18.5", "GO-2022-0969", true},
		{"fixed in go1.18.6", "stdlib", "go1.18.6", "GO-2022-0969", false},
		{"x/net before the fix", "golang.org/x/net", "v0.0.0-20220822230855-b0a4917ee28c", "GO-2022-0969", true},
		{"x/net at the fix", "golang.org/x/net", "v0.0.0-20220906165146-f3363e06e74c", "GO-2022-0969", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := false
			for _, v := range db.Affecting(osv.EcosystemGo, tt.pkg, tt.version) {
				got = got || v.Entry.ID == tt.wantID
			}
			if got != tt.want {
				t.Errorf("Affecting(Go, %s, %s) includes %s = %v, want %v", tt.pkg, tt.version, tt.wantID, got, tt.want)
			}
		})
	}
}

// TestPyPISnapshot loads the PyPA advisory database: every record loads,
// PYSEC-2022-15 (withdrawn with an emptied affected entry) among them.
func TestPyPISnapshot(t *testing.T) {
	db, problems, err := Load(context.Background(), Options{Sources: []string{vulndbtest.PyPISnapshot(t)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("problem in the real snapshot: %v", pr)
	}
	s := db.Stats()
	if s.Records != 2661 || s.Withdrawn != 10 || s.Skipped != 0 {
		t.Errorf("Records %d, Withdrawn %d, Skipped %d; want 2661, 10, 0", s.Records, s.Withdrawn, s.Skipped)
	}
	if v := db.Get("PYSEC-2022-15"); v == nil || !v.Withdrawn() {
		t.Errorf("Get(PYSEC-2022-15) = %v, want the withdrawn record", v)
	}
}

// cpuTime returns the process's user plus system CPU time, which unlike
// wall time does not depend on what else the machine runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoadGoSnapshot loads the whole Go snapshot. Targets: < 500 ms and
// < 150 MB heap on one core (GOMAXPROCS=1). It reports the live heap after
// the load (heap-MB) and CPU time (cpu-ms/op) beside wall time.
func BenchmarkLoadGoSnapshot(b *testing.B) {
	p := vulndbtest.GoSnapshot(b)
	b.ReportAllocs()
	var db *DB
	start := cpuTime()
	for b.Loop() {
		var err error
		db, _, err = Load(context.Background(), Options{Sources: []string{p}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "heap-MB")
	runtime.KeepAlive(db)
}

// BenchmarkAffecting matches 10,000 (ecosystem, name, version) lookups
// against the Go snapshot: every module and version the snapshot's ranges
// name, plus a version below and above each, cycled. Target: < 100 ms per
// 10,000.
func BenchmarkAffecting(b *testing.B) {
	db, _, err := Load(context.Background(), Options{Sources: []string{vulndbtest.GoSnapshot(b)}})
	if err != nil {
		b.Fatal(err)
	}
	type query struct{ name, version string }
	var queries []query
	for _, v := range db.All() {
		for _, a := range v.Entry.Affected {
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					_, ver := eventKind(e)
					if ver == "0" {
						ver = "0.0.1"
					}
					prefix := "v"
					if a.Package.Name == goStdlib || a.Package.Name == goToolchain {
						prefix = "go"
					}
					queries = append(queries, query{a.Package.Name, prefix + ver})
				}
			}
		}
	}
	const n = 10000
	qs := make([]query, n)
	for i := range qs {
		qs[i] = queries[i%len(queries)]
	}
	matches := 0
	start := cpuTime()
	for b.Loop() {
		for _, q := range qs {
			matches += len(db.Affecting(osv.EcosystemGo, q.name, q.version))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k")
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/10k")
	b.ReportMetric(float64(matches)/float64(b.N), "matches/10k")
	if matches == 0 {
		b.Fatal("no lookup matched")
	}
}
