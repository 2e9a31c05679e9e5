package com.example.inventory;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * A minimal OTLP/HTTP span exporter (OTLP/JSON, POST {endpoint}/v1/traces):
 * the OpenTelemetry Java SDK and agent are not packaged by Debian, so the
 * service records its SERVER spans itself, in the same wire format. Spans
 * are sent in batches every second and when the service stops. W3C
 * traceparent headers are honoured: a request that carries one gets a span
 * of that trace with that parent.
 */
final class Tracing implements AutoCloseable {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final HexFormat HEX = HexFormat.of();

    private final String service;
    private final URI endpoint;
    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    private final List<String> pending = new ArrayList<>();
    private final Thread flusher;
    private volatile boolean closed;

    private Tracing(String service, URI endpoint) {
        this.service = service;
        this.endpoint = endpoint;
        this.flusher = new Thread(this::flushLoop, "otlp-exporter");
        this.flusher.setDaemon(true);
        if (endpoint != null) {
            this.flusher.start();
        }
    }

    /** A tracer exporting to OTEL_EXPORTER_OTLP_ENDPOINT, or nowhere when unset. */
    static Tracing fromEnv(String service) {
        String ep = System.getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
        return new Tracing(service, ep == null || ep.isEmpty() ? null : URI.create(ep.replaceAll("/+$", "") + "/v1/traces"));
    }

    /** Starts a SERVER span, a child of the traceparent header when it is valid. */
    Span startServer(String traceparent) {
        String traceId = null, parent = "";
        if (traceparent != null) {
            String[] p = traceparent.split("-");
            if (p.length == 4 && p[1].length() == 32 && p[2].length() == 16) {
                traceId = p[1];
                parent = p[2];
            }
        }
        if (traceId == null) {
            traceId = id(16);
        }
        return new Span(traceId, id(8), parent);
    }

    private static String id(int n) {
        byte[] b = new byte[n];
        RANDOM.nextBytes(b);
        return HEX.formatHex(b);
    }

    /** A span being recorded. */
    final class Span {
        private final String traceId, spanId, parentId;
        private final long start = nowNanos();

        private Span(String traceId, String spanId, String parentId) {
            this.traceId = traceId;
            this.spanId = spanId;
            this.parentId = parentId;
        }

        /** Ends the span with the HTTP server attributes of its request. */
        void end(String name, String method, String route, String path, String clientAddr, String serverAddr, int serverPort, int status) {
            if (endpoint == null) {
                return;
            }
            StringBuilder a = new StringBuilder();
            attr(a, "http.request.method", method);
            if (route != null) {
                attr(a, "http.route", route);
            }
            attr(a, "url.path", path);
            attr(a, "client.address", clientAddr);
            attr(a, "server.address", serverAddr);
            intAttr(a, "server.port", serverPort);
            intAttr(a, "http.response.status_code", status);
            String json = "{\"traceId\":\"" + traceId + "\",\"spanId\":\"" + spanId + "\""
                    + (parentId.isEmpty() ? "" : ",\"parentSpanId\":\"" + parentId + "\"")
                    + ",\"name\":" + quote(name) + ",\"kind\":2"
                    + ",\"startTimeUnixNano\":\"" + start + "\",\"endTimeUnixNano\":\"" + nowNanos() + "\""
                    + ",\"attributes\":[" + a + "]"
                    + (status >= 500 ? ",\"status\":{\"code\":2}" : "") + "}";
            synchronized (pending) {
                pending.add(json);
            }
        }
    }

    private static long nowNanos() {
        java.time.Instant now = java.time.Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    private static void attr(StringBuilder a, String key, String value) {
        if (a.length() > 0) {
            a.append(',');
        }
        a.append("{\"key\":\"").append(key).append("\",\"value\":{\"stringValue\":").append(quote(value)).append("}}");
    }

    private static void intAttr(StringBuilder a, String key, long value) {
        if (a.length() > 0) {
            a.append(',');
        }
        a.append("{\"key\":\"").append(key).append("\",\"value\":{\"intValue\":\"").append(value).append("\"}}");
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    private void flushLoop() {
        while (!closed) {
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                return;
            }
            flush();
        }
    }

    private void flush() {
        List<String> batch;
        synchronized (pending) {
            if (pending.isEmpty()) {
                return;
            }
            batch = new ArrayList<>(pending);
            pending.clear();
        }
        String body = "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                + "{\"key\":\"service.name\",\"value\":{\"stringValue\":" + quote(service) + "}},"
                + "{\"key\":\"telemetry.sdk.language\",\"value\":{\"stringValue\":\"java\"}},"
                + "{\"key\":\"process.runtime.version\",\"value\":{\"stringValue\":" + quote(System.getProperty("java.runtime.version")) + "}}"
                + "]},\"scopeSpans\":[{\"scope\":{\"name\":\"com.example.inventory\"},\"spans\":["
                + String.join(",", batch) + "]}]}]}";
        HttpRequest req = HttpRequest.newBuilder(endpoint).timeout(Duration.ofSeconds(5))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        try {
            HttpResponse<Void> resp = client.send(req, HttpResponse.BodyHandlers.discarding());
            if (resp.statusCode() / 100 != 2) {
                System.err.println("inventory: OTLP export: status " + resp.statusCode() + ", " + batch.size() + " spans lost");
            }
        } catch (Exception e) {
            System.err.println("inventory: OTLP export: " + e + ", " + batch.size() + " spans lost");
        }
    }

    @Override
    public void close() {
        closed = true;
        flusher.interrupt();
        if (endpoint != null) {
            flush();
        }
    }
}
