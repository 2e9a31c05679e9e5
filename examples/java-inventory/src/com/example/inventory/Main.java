package com.example.inventory;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;

/**
 * The inventory service: an HTTP server (the JDK's com.sun.net.httpserver)
 * on INVENTORY_ADDR (default 127.0.0.1:8090), exporting one SERVER span per
 * request over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT when it is set. It
 * stops on SIGTERM or SIGINT, flushing its spans first.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        String addr = env("INVENTORY_ADDR", "127.0.0.1:8090");
        int colon = addr.lastIndexOf(':');
        InetSocketAddress bind = new InetSocketAddress(addr.substring(0, colon), Integer.parseInt(addr.substring(colon + 1)));

        Tracing tracing = Tracing.fromEnv("inventory");
        Inventory inventory = new Inventory();
        HttpServer server = HttpServer.create(bind, 64);
        server.createContext("/", new Router(inventory, tracing));
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        System.err.println("inventory: listening on " + addr);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.stop(1);
            tracing.close();
            stopped.countDown();
        }));
        stopped.await();
    }

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }
}
