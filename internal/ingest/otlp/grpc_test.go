package otlp

import (
	"bytes"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/evidentsec/evident/internal/telemetry"
)

func TestParseGRPCTimeout(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1S", time.Second, true},
		{"300m", 300 * time.Millisecond, true},
		{"99999999n", 99999999 * time.Nanosecond, true},
		{"5u", 5 * time.Microsecond, true},
		{"2M", 2 * time.Minute, true},
		{"1H", time.Hour, true},
		{"0S", 0, true},
		{"99999999H", math.MaxInt64, true}, // beyond a Duration: the longest
		{"", 0, false},
		{"S", 0, false},
		{"10", 0, false},
		{"1s", 0, false},
		{"123456789S", 0, false},
		{"-1S", 0, false},
		{"+1S", 0, false},
		{"1.5S", 0, false},
	}
	for _, tt := range tests {
		got, err := parseGRPCTimeout(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseGRPCTimeout(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestGRPCContentSubtype(t *testing.T) {
	tests := []struct {
		in      string
		subtype string
		ok      bool
	}{
		{"application/grpc", "proto", true},
		{"application/grpc+proto", "proto", true},
		{"Application/GRPC+Proto", "proto", true},
		{"application/grpc+json", "json", true},
		{"application/grpc;proto", "proto", true},
		{"application/grpc+", "proto", true},
		{"application/grpcx", "", false},
		{"application/json", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := grpcContentSubtype(tt.in)
		if got != tt.subtype || ok != tt.ok {
			t.Errorf("grpcContentSubtype(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.subtype, tt.ok)
		}
	}
}

// h2Call makes one HTTP/2 request to addr over a connection of its own,
// with the given header fields and DATA frames (the last ends the
// stream when end), and returns the response's header fields, trailers
// included, once the server ends the stream, with how long that took.
func h2Call(t *testing.T, addr string, fields [][2]string, data [][]byte, end bool) (map[string]string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var mu sync.Mutex // the framer's writes
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	write := func(f func() error) {
		mu.Lock()
		defer mu.Unlock()
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range fields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	start := time.Now()
	write(func() error { _, err := c.Write([]byte(http2.ClientPreface)); return err })
	write(func() error { return fr.WriteSettings() })
	write(func() error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndHeaders: true, EndStream: len(data) == 0 && end})
	})
	for i, d := range data {
		write(func() error { return fr.WriteData(1, end && i == len(data)-1, d) })
	}
	got := map[string]string{}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %v, with %v: %v", time.Since(start), got, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				write(fr.WriteSettingsAck)
			}
		case *http2.MetaHeadersFrame:
			for _, hf := range f.Fields {
				got[hf.Name] = hf.Value
			}
			if f.StreamEnded() {
				return got, time.Since(start)
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				return got, time.Since(start)
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset (%v) after %v, with %v", f.ErrCode, time.Since(start), got)
		}
	}
}

// TestGRPCNotACall: requests that are not gRPC calls, or not calls
// evident serves, are answered as gRPC's own servers answer them: HTTP
// 405 and 415 for what is not a gRPC call, UNIMPLEMENTED (12) for a
// method or content-subtype not served, INVALID_ARGUMENT (3) for a
// malformed grpc-timeout; none reads the message.
func TestGRPCNotACall(t *testing.T) {
	r, adm := startBudgeted(t, testConfig(), &recorder[[]telemetry.Span]{}, 0)
	call := func(method, path, contentType string, extra ...[2]string) [][2]string {
		return append([][2]string{{":method", method}, {":scheme", "http"}, {":path", path},
			{":authority", r.GRPCAddr()}, {"content-type", contentType}, {"te", "trailers"}}, extra...)
	}
	msg := []byte{0, 0, 0, 0, 2, 0x0a, 0x00}
	tests := []struct {
		name       string
		fields     [][2]string
		httpStatus string
		grpcStatus string
	}{
		{"GET", call("GET", tracesMethod, "application/grpc"), "405", ""},
		{"JSON content", call("POST", tracesMethod, "application/json"), "415", ""},
		{"unknown method", call("POST", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", "application/grpc"), "200", "12"},
		{"JSON messages", call("POST", tracesMethod, "application/grpc+json"), "200", "12"},
		{"malformed grpc-timeout", call("POST", tracesMethod, "application/grpc", [2]string{"grpc-timeout", "soon"}), "200", "3"},
		{"unknown grpc-encoding", call("POST", tracesMethod, "application/grpc", [2]string{"grpc-encoding", "br"}), "200", "12"},
		{"a call", call("POST", tracesMethod, "application/grpc+proto", [2]string{"grpc-timeout", "10S"}), "200", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := h2Call(t, r.GRPCAddr(), tt.fields, [][]byte{msg}, true)
			if got[":status"] != tt.httpStatus || got["grpc-status"] != tt.grpcStatus {
				t.Errorf("answered %v; want :status %s, grpc-status %q", got, tt.httpStatus, tt.grpcStatus)
			}
		})
	}
	if !released(adm) {
		t.Errorf("%d bytes still reserved after every call ended", adm.Buffered())
	}
}

// TestGRPCMalformedMessage: a call whose message is not a well-formed
// gRPC message is refused with a status and a message that say what is
// wrong with it, and holds nothing after.
func TestGRPCMalformedMessage(t *testing.T) {
	r, adm := startBudgeted(t, testConfig(), &recorder[[]telemetry.Span]{}, 0)
	fields := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", tracesMethod},
		{":authority", r.GRPCAddr()}, {"content-type", "application/grpc"}, {"te", "trailers"}}
	tests := []struct {
		name       string
		body       []byte
		grpcStatus string
		message    string
	}{
		{"flag 2", []byte{2, 0, 0, 0, 2, 0x0a, 0x00}, "3", "gRPC message flag 2, want 0 or 1 (compressed)"},
		{"prefix cut short", []byte{0, 0, 0}, "3", "gRPC message prefix cut short"},
		{"body cut short", []byte{0, 0, 0, 0, 5, 0x0a}, "3", "the body ended after 1 of the 5 bytes its prefix states"},
		{"compressed without grpc-encoding", []byte{1, 0, 0, 0, 2, 0x0a, 0x00}, "13", "compressed message with no grpc-encoding"},
		{"two messages", []byte{0, 0, 0, 0, 2, 0x0a, 0x00, 0, 0, 0, 0, 2, 0x0a, 0x00}, "3", "the call carried more than its one message (Export is unary)"},
		{"a message and a byte", []byte{0, 0, 0, 0, 2, 0x0a, 0x00, 0xde}, "3", "the call carried more than its one message (Export is unary)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := h2Call(t, r.GRPCAddr(), fields, [][]byte{tt.body}, true)
			msg, err := url.PathUnescape(got["grpc-message"])
			if err != nil {
				t.Fatalf("grpc-message %q: %v", got["grpc-message"], err)
			}
			if got["grpc-status"] != tt.grpcStatus || !strings.Contains(msg, tt.message) {
				t.Errorf("answered %v; want grpc-status %s and a message with %q", got, tt.grpcStatus, tt.message)
			}
		})
	}
	if !released(adm) {
		t.Errorf("%d bytes still reserved after every call ended", adm.Buffered())
	}
}

// TestGRPCCallDeadline: a call whose message stops coming is answered
// DEADLINE_EXCEEDED (4) at its own deadline (grpc-timeout) when that
// comes before read_timeout, and lets go of what it held then, even
// from a client that does not cancel it.
func TestGRPCCallDeadline(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = time.Minute
	r, adm := startBudgeted(t, cfg, &recorder[[]telemetry.Span]{}, 0)
	fields := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", tracesMethod},
		{":authority", r.GRPCAddr()}, {"content-type", "application/grpc"}, {"te", "trailers"}, {"grpc-timeout", "300m"}}
	// 10 of a message's 1,000 bytes, and no more.
	got, took := h2Call(t, r.GRPCAddr(), fields, [][]byte{append([]byte{0, 0, 0, 0x03, 0xe8}, make([]byte, 10)...)}, false)
	if got["grpc-status"] != "4" || took > 10*time.Second {
		t.Errorf("answered %v after %v; want grpc-status 4 after 300 ms", got, took)
	}
	if !released(adm) {
		t.Errorf("%d bytes still reserved after the call's deadline", adm.Buffered())
	}
}
