package source_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/source"
)

// FuzzTempoResponses serves arbitrary bodies as Tempo's tag values,
// search and trace answers: the source may refuse them but must not
// panic or hang.
func FuzzTempoResponses(f *testing.F) {
	f.Add(`{"tagValues":[{"type":"string","value":"gateway"}]}`, `{"traces":[{"traceID":"0af7651916cd43dd8448eb211c80319c","startTimeUnixNano":"1","spanSets":[{"spans":[{"spanID":"b7ad6b7169203331","name":"GET /"}]}]}]}`, "\x0a\x00", "application/protobuf")
	f.Add(`{"tagValues":[{"value":"a"}]}`, `{"traces":[{"traceID":"x"}]}`, `{"trace":{"resourceSpans":[]}}`, "application/json")
	f.Add(`[]`, `{`, "\x0a\xff\xff", "application/protobuf")
	f.Fuzz(func(t *testing.T, values, search, trace, ctype string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasPrefix(r.URL.Path, "/api/v2/search/tag/"):
				w.Write([]byte(values))
			case r.URL.Path == "/api/search":
				w.Write([]byte(search))
			default:
				w.Header().Set("Content-Type", ctype)
				w.Write([]byte(trace))
			}
		}))
		defer srv.Close()
		cfg := source.DefaultTempoConfig()
		cfg.URL = srv.URL
		cfg.TraceBudget, cfg.PerGroup = 5, 5
		tp, err := source.NewTempo(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = source.Pull{Tempo: tp}.Run(context.Background(), window, &collect{}, func(error) {})
	})
}
