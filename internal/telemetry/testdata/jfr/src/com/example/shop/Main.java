package com.example.shop;

import org.acme.text.Hasher;

/** A CPU-bound program for JFR recordings in the telemetry tests. */
public final class Main {
    public static void main(String[] args) throws Exception {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 2;
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        Thread worker = new Thread(() -> {
            long acc = 0;
            while (System.nanoTime() < end) {
                acc += Pricing.total(200);
            }
            System.out.println("pricing " + acc);
        }, "pricing");
        worker.start();
        long acc = 0;
        while (System.nanoTime() < end) {
            acc += new Hasher().hash("order-" + acc);
        }
        worker.join();
        System.out.println("hash " + acc);
    }
}
