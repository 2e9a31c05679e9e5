// Command recorder is a minimal OTLP/HTTP trace receiver that records what it
// receives in the OpenTelemetry Collector file-exporter format: one
// ExportTraceServiceRequest as OTLP/JSON per line. It accepts POST /v1/traces
// with protobuf or JSON bodies, plain or gzip-compressed, and answers as the
// OTLP/HTTP specification asks (same Content-Type as the request; 400 for a
// body that does not decode, 415 for another Content-Type).
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

const maxBody = 64 << 20 // the OTLP specification's recommended request limit

func main() {
	listen := flag.String("listen", "127.0.0.1:4318", "address to receive OTLP/HTTP on (loopback only)")
	out := flag.String("out", "traces.jsonl", "file to append OTLP/JSON lines to")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", "recorder")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *out, logger); err != nil {
		logger.Error("exit", "err", err)
		os.Exit(1)
	}
}

// sink appends requests to a file, one line each, in arrival order.
type sink struct {
	mu    sync.Mutex
	w     *bufio.Writer
	spans int
}

func (s *sink) write(req ptraceotlp.ExportRequest) error {
	js, err := req.MarshalJSON()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spans += req.Traces().SpanCount()
	if _, err := s.w.Write(js); err != nil {
		return err
	}
	return s.w.WriteByte('\n')
}

func run(ctx context.Context, listen, out string, logger *slog.Logger) (err error) {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", out, err)
	}
	s := &sink{w: bufio.NewWriter(f)}
	defer func() {
		err = errors.Join(err, s.w.Flush(), f.Close())
		logger.Info("recorded", "file", out, "spans", s.spans)
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, r *http.Request) { receive(w, r, s, logger) })
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "out", out)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func receive(w http.ResponseWriter, r *http.Request, s *sink, logger *slog.Logger) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != "application/x-protobuf" && ct != "application/json") {
		http.Error(w, "Content-Type must be application/x-protobuf or application/json", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxBody)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxBody+1)
	default:
		http.Error(w, "unsupported Content-Encoding", http.StatusUnsupportedMediaType)
		return
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(raw) > maxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if ct == "application/json" {
		err = req.UnmarshalJSON(raw)
	} else {
		err = req.UnmarshalProto(raw)
	}
	if err != nil {
		http.Error(w, "decode ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.write(req); err != nil {
		logger.Error("record", "err", err)
		http.Error(w, "record: "+err.Error(), http.StatusInternalServerError)
		return
	}
	resp := ptraceotlp.NewExportResponse()
	var answer []byte
	if ct == "application/json" {
		answer, err = resp.MarshalJSON()
	} else {
		answer, err = resp.MarshalProto()
	}
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Write(answer)
}
