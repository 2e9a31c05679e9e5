package auth

import (
	"errors"
	"strings"
	"testing"
)

// TestAuthenticateErrorsHideCredentials: the error of a refused
// Authorization header, which the client gets back and an exporter logs,
// never repeats the credential: a token or a JWT sent without a scheme
// included, while a misspelt scheme is still named.
func TestAuthenticateErrorsHideCredentials(t *testing.T) {
	f := newFixture(t)
	_, secret, _ := parseToken(f.admin)
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJlc2VjcmV0"
	tests := []struct {
		name, authorization string
		// hidden must not be in the error; named must be.
		hidden, named string
	}{
		{"token alone", f.admin, secret, "does not start with a scheme"},
		{"token alone, then a space", f.admin + " x", secret, "does not start with a scheme"},
		{"jwt alone", jwt, "c2lnbmF0dXJlc2VjcmV0", "does not start with a scheme"},
		{"tab for a space", "Bearer\t" + f.admin, secret, "does not start with a scheme"},
		{"misspelt scheme", "Beaer " + f.admin, secret, `scheme "Beaer"`},
		{"other scheme", "Digest " + f.admin, secret, `scheme "Digest"`},
		{"wrong secret", "Bearer " + otherLast(f.admin), otherLast(f.admin)[22:], "invalid or expired token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.a.Authenticate(t.Context(), tt.authorization)
			if !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("Authenticate = %v, want ErrBadCredentials", err)
			}
			if strings.Contains(err.Error(), tt.hidden) {
				t.Errorf("Authenticate = %v, which repeats the credential", err)
			}
			if !strings.Contains(err.Error(), tt.named) {
				t.Errorf("Authenticate = %v, want %q in it", err, tt.named)
			}
		})
	}
}
