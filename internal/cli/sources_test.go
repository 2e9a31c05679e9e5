package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/source/sourcetest"
)

// requireAuth refuses requests without the basic auth and tenant the
// test sets, counting the requests that had them.
func requireAuth(user, password, org string, n *atomic.Int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password || r.Header.Get("X-Scope-OrgID") != org {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		n.Add(1)
		next.ServeHTTP(w, r)
	})
}

// TestAnalyzeShopFromSources is issue 12's acceptance: the example's
// recorded telemetry served by Tempo's and Pyroscope's query APIs gives
// exactly the report analyze gives from the files.
func TestAnalyzeShopFromSources(t *testing.T) {
	rec, err := sourcetest.LoadRecording(filepath.Join(shop, "recorded"))
	if err != nil {
		t.Fatal(err)
	}
	pyro, tempo, err := rec.Servers()
	if err != nil {
		t.Fatal(err)
	}
	var tempoReqs, pyroReqs atomic.Int64
	ts := httptest.NewServer(requireAuth("1234", "tempo-token", "shop", &tempoReqs, tempo.Handler()))
	defer ts.Close()
	mux := http.NewServeMux()
	mux.Handle(pyro.Handler())
	ps := httptest.NewServer(requireAuth("5678", "pyro-token", "shop", &pyroReqs, mux))
	defer ps.Close()
	t.Setenv("EVIDENT_TEMPO_USER", "1234")
	t.Setenv("EVIDENT_TEMPO_PASSWORD", "tempo-token")
	t.Setenv("EVIDENT_TEMPO_ORG_ID", "shop")
	t.Setenv("EVIDENT_PYROSCOPE_USER", "5678")
	t.Setenv("EVIDENT_PYROSCOPE_PASSWORD", "pyro-token")
	t.Setenv("EVIDENT_PYROSCOPE_ORG_ID", "shop")

	want := analyzeShop(t, "json")

	recDir := filepath.Join(shop, "recorded")
	var out, errOut bytes.Buffer
	g := &globals{stdout: &out, stderr: &errOut, dataDir: t.TempDir()}
	err = runAnalyze(context.Background(), g, analyzeFlags{
		vulns:      []string{filepath.Join(recDir, "osv")},
		findings:   []string{filepath.Join(recDir, "findings")},
		sources:    sourceFlags{tempo: ts.URL, pyroscope: ps.URL, from: "2020-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z"},
		config:     filepath.Join(shop, "evident.yaml"),
		format:     "json",
		sourceRoot: shop,
		now:        func() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatalf("analyze: %v\n%s", err, errOut.String())
	}
	// Only the provenance of the profiles differs: a file or a query.
	got := regexp.MustCompile(`"source": "pyroscope \{service_name=\\"(\w+)\\"\}"`).ReplaceAllString(out.String(), `"source": "../../examples/shop/recorded/profiles/$1/cpu.pb.gz"`)
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("report from the sources differs from the report from files (-files +sources):\n%s", diff)
	}
	if got := errOut.String(); !strings.Contains(got, "from the sources") || strings.Contains(got, "skipped") || strings.Contains(got, "token") {
		t.Errorf("stderr:\n%s", got)
	}
	if tempoReqs.Load() == 0 || pyroReqs.Load() == 0 {
		t.Errorf("authorized requests: tempo %d, pyroscope %d", tempoReqs.Load(), pyroReqs.Load())
	}
}
