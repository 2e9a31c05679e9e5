package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verifyWebhook checks a delivery the way docs/detections.md tells a
// receiver to: the HMAC over the timestamp header, a dot and the raw body,
// compared in constant time, and the timestamp no older than tolerance.
// Keep the two in step; the docs use time.Since and 5 minutes for now
// and tolerance.
func verifyWebhook(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := h.Get("X-Evident-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("stale timestamp")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(h.Get("X-Evident-Signature")), []byte(want)) {
		return errors.New("bad signature")
	}
	return nil
}

func TestWebhookSignature(t *testing.T) {
	secret := []byte("s3cret")
	hook, srv := newCapture(t, http.StatusServiceUnavailable)
	w, err := NewWebhook("hook", srv.URL, string(secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := t0
	w.now = func() time.Time { return sent }
	a := Alert{Alert: firstExec(), ID: "4f1c2b9e0d3a7c55"}
	if err := w.Send(context.Background(), a); err == nil {
		t.Fatal("first delivery: want the 503 as an error")
	}
	// The router retries by sending again; a retry is stamped and signed
	// afresh, so it is not refused as stale after a long backoff.
	sent = t0.Add(10 * time.Minute)
	if err := w.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	hook.wait(t, 2)
	hook.mu.Lock()
	first, retry := hook.reqs[0].Header, hook.reqs[1].Header
	body := hook.bodies[1]
	hook.mu.Unlock()

	if got, want := retry.Get(TimestampHeader), strconv.FormatInt(sent.Unix(), 10); got != want {
		t.Errorf("retry's timestamp %s, want %s", got, want)
	}
	if first.Get(SignatureHeader) == retry.Get(SignatureHeader) {
		t.Error("retry carries the first attempt's signature")
	}
	if got, want := retry.Get(SignatureHeader), Sign(secret, retry.Get(TimestampHeader), body); got != want {
		t.Errorf("signature %s, Sign gives %s", got, want)
	}

	tamper := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		h.Set(k, v)
		return h
	}
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		now     time.Time
		wantErr string
	}{
		{"as delivered", retry, body, sent.Add(time.Minute), ""},
		{"a clock a little behind", retry, body, sent.Add(-time.Minute), ""},
		{"replayed after the tolerance", retry, body, sent.Add(6 * time.Minute), "stale timestamp"},
		// An attacker who replays a captured delivery cannot freshen its
		// timestamp: the signature covers it.
		{"replayed with a new timestamp", tamper(retry, TimestampHeader, strconv.FormatInt(sent.Add(time.Hour).Unix(), 10)), body, sent.Add(time.Hour), "bad signature"},
		{"the first attempt's signature on the retry", tamper(retry, SignatureHeader, first.Get(SignatureHeader)), body, sent, "bad signature"},
		{"body changed", retry, []byte(strings.Replace(string(body), "shop", "shap", 1)), sent, "bad signature"},
		{"wrong secret", tamper(retry, SignatureHeader, Sign([]byte("other"), retry.Get(TimestampHeader), body)), body, sent, "bad signature"},
		{"no timestamp", tamper(retry, TimestampHeader, ""), body, sent, "bad timestamp"},
		{"the old scheme, body alone", tamper(retry, SignatureHeader, bodyOnly(secret, body)), body, sent, "bad signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyWebhook(secret, tt.header, tt.body, tt.now, 5*time.Minute)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("verify = %q, want %q", got, tt.wantErr)
			}
		})
	}

	t.Run("openssl", func(t *testing.T) {
		// The shell recipe of docs/detections.md.
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("no openssl")
		}
		file := filepath.Join(t.TempDir(), "body.json")
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", `{ printf '%s.' "$TS"; cat "$BODY"; } | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1`)
		cmd.Env = append(os.Environ(), "TS="+retry.Get(TimestampHeader), "BODY="+file, "SECRET="+string(secret))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := "sha256="+strings.TrimSpace(string(out)), retry.Get(SignatureHeader); got != want {
			t.Errorf("openssl computes %s, the header is %s", got, want)
		}
	})
}

func bodyOnly(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
