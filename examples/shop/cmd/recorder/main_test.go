package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func request(tb testing.TB) ptraceotlp.ExportRequest {
	tb.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "gateway")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("GET /search")
	s.SetKind(ptrace.SpanKindServer)
	s.SetTraceID([16]byte{1, 2, 3})
	s.SetSpanID([8]byte{4, 5, 6})
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReceive(t *testing.T) {
	req := request(t)
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, contentType, encoding string
		body                                []byte
		wantStatus, wantSpans               int
	}{
		{"protobuf", http.MethodPost, "application/x-protobuf", "", pb, http.StatusOK, 1},
		{"json with charset", http.MethodPost, "application/json; charset=utf-8", "", js, http.StatusOK, 1},
		{"gzip protobuf", http.MethodPost, "application/x-protobuf", "gzip", gzipped(t, pb), http.StatusOK, 1},
		{"GET", http.MethodGet, "application/json", "", nil, http.StatusMethodNotAllowed, 0},
		{"text body", http.MethodPost, "text/plain", "", []byte("hi"), http.StatusUnsupportedMediaType, 0},
		{"zstd", http.MethodPost, "application/json", "zstd", js, http.StatusUnsupportedMediaType, 0},
		{"bad protobuf", http.MethodPost, "application/x-protobuf", "", []byte{0xff, 0xff}, http.StatusBadRequest, 0},
		{"bad gzip", http.MethodPost, "application/json", "gzip", js, http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &sink{w: bufio.NewWriter(&out)}
			r := httptest.NewRequest(tt.method, "/v1/traces", bytes.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			if tt.encoding != "" {
				r.Header.Set("Content-Encoding", tt.encoding)
			}
			w := httptest.NewRecorder()
			receive(w, r, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body.String())
			}
			if s.spans != tt.wantSpans {
				t.Errorf("recorded %d spans, want %d", s.spans, tt.wantSpans)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			if got, want := w.Header().Get("Content-Type"), strings.SplitN(tt.contentType, ";", 2)[0]; got != want {
				t.Errorf("response Content-Type = %q, want %q", got, want)
			}
			if err := s.w.Flush(); err != nil {
				t.Fatal(err)
			}
			line, err := out.ReadBytes('\n')
			if err != nil {
				t.Fatalf("recorded line: %v", err)
			}
			back := ptraceotlp.NewExportRequest()
			if err := back.UnmarshalJSON(line); err != nil {
				t.Fatalf("recorded line is not OTLP/JSON: %v", err)
			}
			if got := back.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name(); got != "GET /search" {
				t.Errorf("recorded span name = %q", got)
			}
		})
	}
}

func FuzzReceive(f *testing.F) {
	js, err := request(f).MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js, true)
	f.Add([]byte{0x0a, 0x00}, false)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := "application/x-protobuf"
		if asJSON {
			ct = "application/json"
		}
		var out bytes.Buffer
		s := &sink{w: bufio.NewWriter(&out)}
		r := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		receive(w, r, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("status %d for a body of %d bytes", w.Code, len(body))
		}
	})
}
