package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/store"
)

// TestModesRefusal: with nobody to admit, Modes refuses and says what
// would help the listeners it names: listening on loopback for those
// beyond it, admitting loopback clients for those on loopback that
// require_on_loopback closed; never advice that changes nothing.
func TestModesRefusal(t *testing.T) {
	const (
		toLoopback = "or listen on loopback only"
		admitLocal = "or admit loopback clients:   serve.auth.require_on_loopback: false"
	)
	tests := []struct {
		name              string
		requireOnLoopback bool
		ls                []Listener
		want, notWant     []string
	}{
		{"beyond loopback", false, []Listener{{"api", "0.0.0.0:8080"}, {"otlp-http", "127.0.0.1:4318"}},
			[]string{"api (0.0.0.0:8080) would need", toLoopback}, []string{admitLocal, "otlp-http"}},
		{"loopback, required", true, []Listener{{"api", "127.0.0.1:8080"}},
			[]string{"api (127.0.0.1:8080) would need", admitLocal}, []string{toLoopback}},
		{"both", true, []Listener{{"api", "127.0.0.1:8080"}, {"otlp-grpc", ":4317"}},
			[]string{"api (127.0.0.1:8080), otlp-grpc (:4317) would need", toLoopback, admitLocal}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RequireOnLoopback = tt.requireOnLoopback
			a, err := New(t.Context(), cfg, Deps{Tokens: noTokens{}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Modes(tt.ls, false)
			if !errors.Is(err, ErrRefuse) {
				t.Fatalf("Modes = %v, want ErrRefuse", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Modes = %v\nwant %q in it", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("Modes = %v\nwant no %q in it", err, w)
				}
			}
		})
	}
}

// noTokens is a token store that holds none.
type noTokens struct{}

func (noTokens) Tokens(context.Context) ([]store.Token, error) { return nil, nil }
