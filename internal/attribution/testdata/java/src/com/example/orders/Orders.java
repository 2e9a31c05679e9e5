package com.example.orders;

import java.util.List;
import java.util.Map;

import org.yaml.snakeyaml.Yaml;

/** Orders reads order documents. */
final class Orders {
    private static final String PLAIN = "id: 42\nitems:\n  - {sku: a-1, qty: 2}\n  - {sku: b-7, qty: 1}\n";
    private static final String TAGGED = "!!com.example.orders.Order {id: 7, sku: c-3, qty: 5}\n";

    private Orders() {}

    static long total(Yaml safe, Yaml unsafe) {
        Map<String, Object> doc = safe.load(PLAIN);
        long qty = 0;
        for (Object item : (List<?>) doc.get("items")) {
            qty += (Integer) ((Map<?, ?>) item).get("qty");
        }
        Order o = unsafe.load(TAGGED);
        return qty + o.qty;
    }
}
