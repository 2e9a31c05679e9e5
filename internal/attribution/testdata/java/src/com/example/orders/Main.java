package com.example.orders;

import java.util.List;
import java.util.Map;

import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.Constructor;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * Main parses order documents with SnakeYAML for as many seconds as its
 * argument says: plain documents with the SafeConstructor, and documents
 * that name a Java class ("!!com.example.orders.Order") with the default
 * Constructor, the path of CVE-2022-1471.
 */
public final class Main {
    public static void main(String[] args) {
        long until = System.nanoTime() + Long.parseLong(args[0]) * 1_000_000_000L;
        Yaml safe = new Yaml(new SafeConstructor(new LoaderOptions()));
        Yaml unsafe = new Yaml(new Constructor(new LoaderOptions()));
        long n = 0;
        while (System.nanoTime() < until) {
            n += Orders.total(safe, unsafe);
        }
        System.out.println(n);
    }
}
