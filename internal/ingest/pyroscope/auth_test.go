package pyroscope

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	pyroscopego "github.com/grafana/pyroscope-go"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// TestGuardedPyroscopeGoClient sends profiles with pyroscope-go's basic
// auth and bearer token, and without credentials.
func TestGuardedPyroscopeGoClient(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	token, tok, err := auth.NewToken("profiler", auth.RoleIngest, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(t.Context(), tok, "test"); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(t.Context(), auth.DefaultConfig(), auth.Deps{Tokens: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r, err := New(testConfig(), rec, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Guard(a.Guard("pyroscope", auth.Required))
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	}()

	for _, cfg := range []pyroscopego.Config{
		{BasicAuthUser: "alloy", BasicAuthPassword: token},
		{HTTPHeaders: map[string]string{"Authorization": "Bearer " + token}},
	} {
		before := len(rec.all())
		cfg.ApplicationName, cfg.ServerAddress = "checkout", "http://"+r.Addr()
		cfg.ProfileTypes = []pyroscopego.ProfileType{pyroscopego.ProfileCPU}
		p, err := pyroscopego.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("burned CPU (%d)", burn(200*time.Millisecond))
		p.Flush(true)
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if len(rec.all()) == before {
			t.Errorf("no profile arrived with %+v", cfg.HTTPHeaders)
		}
	}

	body, ct := form(t, [2]string{"profile", string(cpuProfile(t))})
	resp, err := http.Post("http://"+r.Addr()+IngestPath+"?name=checkout", ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("ingest without credentials: status %d, want 401", resp.StatusCode)
	}
}
