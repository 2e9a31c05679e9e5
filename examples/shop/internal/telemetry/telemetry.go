// Package telemetry wires one shop service to OpenTelemetry tracing and CPU
// profiling, the two signals evident correlates.
//
// Traces go to OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set. The tracer provider is wrapped by
// otel-profiling-go, so every sample taken while a span is active carries the
// pprof labels span_id and span_name of the local root span: that is what lets
// a profile sample be traced back to the endpoint that caused it.
//
// CPU profiles go either to a file written with runtime/pprof
// (SHOP_CPU_PROFILE, used by `make record`) or to a Pyroscope-compatible
// /ingest endpoint through pyroscope-go (PYROSCOPE_SERVER_ADDRESS, used by
// `evident demo`). Both use the Go runtime's 100 Hz CPU profiler, which can only
// run once per process, so setting both is an error.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	otelpyroscope "github.com/grafana/otel-profiling-go"
	"github.com/grafana/pyroscope-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
)

// Namespace is the service.namespace of every shop service.
const Namespace = "shop"

// ErrTwoProfilers is returned when both SHOP_CPU_PROFILE and
// PYROSCOPE_SERVER_ADDRESS are set.
var ErrTwoProfilers = errors.New("set SHOP_CPU_PROFILE or PYROSCOPE_SERVER_ADDRESS, not both")

// Shutdown flushes buffered spans and stops the profiler. It must be called
// once, before the process exits, or the last spans and the CPU profile are lost.
type Shutdown func(context.Context) error

// Start installs the global tracer provider and propagator for service and
// starts CPU profiling as the environment asks (see the package doc).
func Start(ctx context.Context, service string, logger *slog.Logger) (Shutdown, error) {
	cpuFile := os.Getenv("SHOP_CPU_PROFILE")
	pyroscopeAddr := os.Getenv("PYROSCOPE_SERVER_ADDRESS")
	if cpuFile != "" && pyroscopeAddr != "" {
		return nil, ErrTwoProfilers
	}

	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service),
		semconv.ServiceNamespace(Namespace),
		semconv.ServiceVersion("1.0.0"),
	))
	if err != nil {
		return nil, fmt.Errorf("build resource for %s: %w", service, err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("create OTLP/HTTP trace exporter for %s: %w", service, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	} else {
		logger.Info("OTEL_EXPORTER_OTLP_ENDPOINT is not set: spans are not exported")
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(otelpyroscope.NewTracerProvider(tp))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	stopProfile := func() error { return nil }
	switch {
	case cpuFile != "":
		f, err := os.Create(cpuFile)
		if err != nil {
			return nil, fmt.Errorf("create CPU profile %s: %w", cpuFile, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("start CPU profile %s: %w", cpuFile, err)
		}
		stopProfile = func() error {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				return fmt.Errorf("close CPU profile %s: %w", cpuFile, err)
			}
			return nil
		}
	case pyroscopeAddr != "":
		p, err := pyroscope.Start(pyroscope.Config{
			ApplicationName: service,
			ServerAddress:   pyroscopeAddr,
			ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU},
			Tags:            map[string]string{"service_namespace": Namespace},
		})
		if err != nil {
			return nil, fmt.Errorf("start pyroscope profiler for %s at %s: %w", service, pyroscopeAddr, err)
		}
		stopProfile = p.Stop
	}

	return func(ctx context.Context) error {
		// Stop the profiler first: its last samples belong to spans that
		// are already finished, and a flushed profile matters more than the
		// last batch of spans if the deadline runs out.
		perr := stopProfile()
		terr := tp.Shutdown(ctx)
		return errors.Join(perr, terr)
	}, nil
}
