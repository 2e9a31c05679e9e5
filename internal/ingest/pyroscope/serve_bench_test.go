package pyroscope

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// countingStore counts the bytes the engine logs.
type countingStore struct {
	*sqlite.Store
	bytes, batches atomic.Int64
}

func (s *countingStore) SubmitBatch(ctx context.Context, kind store.BatchKind, payload []byte) func() (int64, error) {
	s.bytes.Add(int64(len(payload)))
	s.batches.Add(1)
	return s.Store.SubmitBatch(ctx, kind, payload)
}

// BenchmarkServeIngest is the serve path of a real profile, listener to
// log commit: pyroscope-go's upload of the shop's recorded CPU profile
// of catalog (examples/shop/recorded, 30 KB gzipped, span labels on its
// samples) to /ingest, decoded, redacted, logged with full sync and
// applied to the model, one request at a time. It reports the bytes the
// log keeps per profile. Count its instructions with valgrind (docs/architecture.md).
func BenchmarkServeIngest(b *testing.B) {
	prof, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "shop", "recorded", "profiles", "catalog", "cpu.pb.gz"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, b.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer sq.Close()
	st := &countingStore{Store: sq}
	// The checkpoints and re-assessments that run on timers are left
	// out, so that what an upload costs does not depend on how long the
	// run takes (under valgrind, minutes).
	cfg := engine.DefaultConfig()
	cfg.CheckpointInterval, cfg.AssessInterval, cfg.RefreshInterval = time.Hour, time.Hour, 0
	e, err := engine.New(cfg, engine.Deps{
		Store: st, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(ctx)
	r, err := New(testConfig(), e.ProfilesConsumer(), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer r.Shutdown(ctx)
	body, contentType := form(b, [2]string{"profile", string(prof)})
	q := url.Values{"name": {"catalog{env=shop}"}, "from": {"1795517052"}, "until": {"1795517062"}, "sampleRate": {"100"}, "spyName": {"gospy"}}
	target := "http://" + r.Addr() + IngestPath + "?" + q.Encode()
	client := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(target, contentType, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := st.batches.Load(); n > 0 {
		b.ReportMetric(float64(st.bytes.Load())/float64(n), "logged-bytes/profile")
	}
}
