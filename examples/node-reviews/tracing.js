// tracing.js starts the OpenTelemetry Node SDK (loaded with node --require
// before the service): HTTP and express instrumentation, spans exported over
// OTLP/HTTP (JSON) to OTEL_EXPORTER_OTLP_ENDPOINT, service.name "reviews".
// Each SERVER span, as it starts, becomes the @datadog/pprof wall profiler's
// context, so profile samples carry its span_id (see profiling.js).
'use strict';

const { NodeSDK } = require('@opentelemetry/sdk-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
const { Resource } = require('@opentelemetry/resources');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const profiling = require('./profiling');

const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
const sdk = new NodeSDK({
  resource: new Resource({ 'service.name': 'reviews' }),
  spanProcessors: endpoint ? [new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint.replace(/\/+$/, '') + '/v1/traces' }), { scheduledDelayMillis: 1000 })] : [],
  instrumentations: [
    new HttpInstrumentation({
      requestHook: (span, req) => {
        if (req.method !== undefined && req.headers !== undefined) { // incoming: a SERVER span
          profiling.enter(span.spanContext());
        }
      },
    }),
    new ExpressInstrumentation(),
  ],
});
sdk.start();

module.exports = { shutdown: () => sdk.shutdown() };
