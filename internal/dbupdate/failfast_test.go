package dbupdate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentServer accepts connections and never answers, as a server behind
// a black-holing firewall or a wedged proxy does. Its URL serves nothing.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// closedPort returns the URL of a port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestUpdateFailsFast checks that failures a retry cannot cure end the
// file's update at the first attempt, that transient ones are retried
// with each retry shown, and that the timeouts bound a server that never
// answers.
func TestUpdateFailsFast(t *testing.T) {
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(forbidden.Close)
	selfSigned := httptest.NewUnstartedServer(http.NotFoundHandler())
	// The server would log the handshake the client rightly aborts.
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0)
	selfSigned.StartTLS()
	t.Cleanup(selfSigned.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	silent := silentServer(t)

	tests := []struct {
		name    string
		base    string
		setup   func(*Config)
		wantErr error
		// wantText is part of the error message.
		wantText     string
		wantAttempts int
		// wantProgress are lines (or their beginnings) of the progress
		// output.
		wantProgress []string
	}{
		{
			name: "404", base: notFound.URL, wantErr: ErrNotFound, wantText: "not found (HTTP 404)", wantAttempts: 1,
			wantProgress: []string{"Go: failed: get " + notFound.URL + "/Go/all.zip: not found (HTTP 404)"},
		},
		{name: "403", base: forbidden.URL, wantErr: ErrStatus, wantText: "403 Forbidden", wantAttempts: 1},
		{name: "closed port", base: closedPort(t), wantErr: ErrRefused, wantText: "connect: connection refused", wantAttempts: 1},
		{name: "unresolvable host", base: "http://nonexistent.invalid", wantErr: ErrHostNotFound, wantText: "lookup nonexistent.invalid", wantAttempts: 1},
		{name: "certificate not trusted", base: selfSigned.URL, wantErr: ErrTLS, wantText: "certificate", wantAttempts: 1},
		{name: "plain HTTP server at an https URL", base: strings.Replace(plain.URL, "http:", "https:", 1), wantErr: ErrTLS, wantAttempts: 1},
		{
			name: "server never answers: each attempt times out and is retried",
			base: silent,
			setup: func(c *Config) {
				c.HeaderTimeout = 20 * time.Millisecond
				c.Retries = 2
			},
			wantErr: ErrTimeout, wantText: "no response in 20ms", wantAttempts: 3,
			wantProgress: []string{
				"Go: attempt 1/3 failed, retrying in 1ms: get " + silent + "/Go/all.zip: no response in 20ms: timed out",
				"Go: attempt 2/3 failed, retrying in 2ms: ",
				"Go: failed: get " + silent + "/Go/all.zip: no response in 20ms: timed out",
			},
		},
		{
			name: "server never answers: --timeout ends the file's update",
			base: silent,
			setup: func(c *Config) {
				c.Timeout = 30 * time.Millisecond
				c.Retries = 5
			},
			wantErr: ErrTimeout, wantText: "gave up after 30ms", wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantErr == ErrHostNotFound {
				var de *net.DNSError
				if _, err := net.DefaultResolver.LookupHost(context.Background(), "nonexistent.invalid"); !errors.As(err, &de) || !de.IsNotFound {
					t.Skipf("this machine's resolver does not answer NXDOMAIN for nonexistent.invalid: %v", err)
				}
			}
			cfg := DefaultConfig()
			cfg.BaseURL = tt.base
			cfg.KEVURL = ""
			cfg.EPSSURL = ""
			cfg.Ecosystems = []string{"Go"}
			cfg.Dir = t.TempDir()
			cfg.HTTPClient = NewHTTPClient(nil)
			t.Cleanup(cfg.HTTPClient.CloseIdleConnections)
			cfg.RetryWait = time.Millisecond
			cfg.MaxRetryWait = 4 * time.Millisecond
			var progress bytes.Buffer
			cfg.Progress = &progress
			if tt.setup != nil {
				tt.setup(&cfg)
			}

			res, err := Update(context.Background(), cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Update error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if got := res.Files[0].Attempts; got != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", got, tt.wantAttempts)
			}
			for _, want := range tt.wantProgress {
				if !strings.Contains(progress.String(), want) {
					t.Errorf("progress:\n%s\nwant a line starting %q", progress.String(), want)
				}
			}
		})
	}
}

// TestUpdateAllEcosystemsSilentServer: the list of ecosystems is bounded
// by the header timeout too, and its retries are shown.
func TestUpdateAllEcosystemsSilentServer(t *testing.T) {
	silent := silentServer(t)
	cfg := DefaultConfig()
	cfg.BaseURL = silent
	cfg.KEVURL, cfg.EPSSURL = "", ""
	cfg.Ecosystems, cfg.AllEcosystems = nil, true
	cfg.Dir = t.TempDir()
	cfg.HTTPClient = NewHTTPClient(nil)
	t.Cleanup(cfg.HTTPClient.CloseIdleConnections)
	cfg.RetryWait, cfg.MaxRetryWait = time.Millisecond, time.Millisecond
	cfg.HeaderTimeout = 20 * time.Millisecond
	cfg.Retries = 1
	var progress bytes.Buffer
	cfg.Progress = &progress

	_, err := Update(context.Background(), cfg)
	want := "list ecosystems from " + silent + "/ecosystems.txt: get " + silent + "/ecosystems.txt: no response in 20ms: timed out"
	if !errors.Is(err, ErrTimeout) || err.Error() != want {
		t.Errorf("Update error = %v, want %q", err, want)
	}
	if wantLine := "ecosystems.txt: attempt 1/2 failed, retrying in 1ms: "; !strings.Contains(progress.String(), wantLine) {
		t.Errorf("progress %q, want %q", progress.String(), wantLine)
	}
}
