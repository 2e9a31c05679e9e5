package com.example.inventory;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Routes requests and records a SERVER span for each, with the attributes
 * the OpenTelemetry HTTP semantic conventions name.
 */
final class Router implements HttpHandler {
    private final Inventory inventory;
    private final Tracing tracing;
    private final String adminToken = Main.env("INVENTORY_ADMIN_TOKEN", "");

    Router(Inventory inventory, Tracing tracing) {
        this.inventory = inventory;
        this.tracing = tracing;
    }

    @Override
    public void handle(HttpExchange ex) throws IOException {
        String method = ex.getRequestMethod();
        String path = ex.getRequestURI().getPath();
        Tracing.Span span = tracing.startServer(ex.getRequestHeaders().getFirst("traceparent"));
        String route = null;
        int status;
        try {
            if (method.equals("GET") && path.equals("/items")) {
                route = "/items";
                status = send(ex, 200, "text/plain", inventory.list());
            } else if (method.equals("GET") && path.startsWith("/items/") && path.indexOf('/', 7) < 0) {
                route = "/items/{sku}";
                String body = inventory.item(path.substring(7));
                status = body == null ? send(ex, 404, "text/plain", "no such item\n") : send(ex, 200, "application/json", body);
            } else if (method.equals("POST") && path.equals("/items/import")) {
                route = "/items/import";
                String yaml = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
                status = send(ex, 200, "text/plain", inventory.importBatch(yaml) + " items imported\n");
            } else if (method.equals("POST") && path.equals("/admin/archive")) {
                route = "/admin/archive";
                String token = ex.getRequestHeaders().getFirst("X-Admin-Token");
                if (adminToken.isEmpty() || !adminToken.equals(token)) {
                    status = send(ex, 403, "text/plain", "forbidden\n");
                } else {
                    status = send(ex, 200, "application/x-tar", inventory.archive());
                }
            } else {
                status = send(ex, 404, "text/plain", "not found\n");
            }
        } catch (RuntimeException e) {
            status = send(ex, 400, "text/plain", e.getClass().getSimpleName() + "\n");
        }
        String forwarded = ex.getRequestHeaders().getFirst("X-Forwarded-For");
        String client = forwarded != null ? forwarded.split(",")[0].trim() : ex.getRemoteAddress().getAddress().getHostAddress();
        span.end(route == null ? method : method + " " + route, method, route, path, client,
                ex.getLocalAddress().getAddress().getHostAddress(), ex.getLocalAddress().getPort(), status);
    }

    private static int send(HttpExchange ex, int status, String type, String body) throws IOException {
        return send(ex, status, type, body.getBytes(StandardCharsets.UTF_8));
    }

    private static int send(HttpExchange ex, int status, String type, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
        return status;
    }
}
