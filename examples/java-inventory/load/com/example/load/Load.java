package com.example.load;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The bounded traffic generator: Load BASE_URL N CONCURRENCY RATE sends N
 * requests (CONCURRENCY at a time, at most RATE a second) as public clients
 * (X-Forwarded-For in 198.51.100.0/24): half GET /items/{sku}, a fifth GET
 * /items, the rest POST /items/import with a YAML batch of 40 items. It
 * never calls POST /admin/archive. It exits 1 if any request failed.
 */
public final class Load {
    public static void main(String[] args) throws Exception {
        URI base = URI.create(args[0]);
        int n = Integer.parseInt(args[1]), conc = Integer.parseInt(args[2]);
        double rate = Double.parseDouble(args[3]);
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        ExecutorService pool = Executors.newFixedThreadPool(conc);
        AtomicInteger failed = new AtomicInteger();
        long interval = (long) (1e9 / rate), start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            long due = start + i * interval;
            long wait = due - System.nanoTime();
            if (wait > 0) {
                TimeUnit.NANOSECONDS.sleep(wait);
            }
            final int k = i;
            pool.submit(() -> {
                try {
                    HttpRequest req = request(base, k);
                    HttpResponse<Void> resp = client.send(req, HttpResponse.BodyHandlers.discarding());
                    if (resp.statusCode() != 200) {
                        failed.incrementAndGet();
                        System.err.println("load: " + req.method() + " " + req.uri() + ": status " + resp.statusCode());
                    }
                } catch (Exception e) {
                    failed.incrementAndGet();
                    System.err.println("load: " + e);
                }
            });
        }
        pool.shutdown();
        pool.awaitTermination(60, TimeUnit.SECONDS);
        System.err.printf("load: %d requests, %d failed%n", n, failed.get());
        System.exit(failed.get() == 0 ? 0 : 1);
    }

    private static HttpRequest request(URI base, int k) {
        Random r = new Random(k);
        HttpRequest.Builder b = HttpRequest.newBuilder().timeout(Duration.ofSeconds(10))
                .header("X-Forwarded-For", "198.51.100." + (1 + r.nextInt(254)));
        int kind = k % 10;
        if (kind < 5) {
            return b.uri(base.resolve(String.format("/items/SKU-%04d", r.nextInt(200)))).GET().build();
        }
        if (kind < 7) {
            return b.uri(base.resolve("/items")).GET().build();
        }
        StringBuilder y = new StringBuilder("supplier: supplier-" + r.nextInt(20) + "\nitems:\n");
        for (int i = 0; i < 40; i++) {
            int sku = 1000 + r.nextInt(9000);
            y.append("  - sku: SKU-").append(sku).append('\n')
             .append("    name: \"item ").append(sku).append("\"\n")
             .append("    quantity: ").append(r.nextInt(50)).append('\n')
             .append("    price: ").append(r.nextInt(10000) / 100.0).append('\n')
             .append("    tags: [imported, batch-").append(k).append("]\n");
        }
        return b.uri(base.resolve("/items/import")).header("Content-Type", "application/yaml")
                .POST(HttpRequest.BodyPublishers.ofString(y.toString())).build();
    }
}
