package com.example.shop;

/** Price arithmetic, on a stack of its own. */
final class Pricing {
    static long total(int n) {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Inner.price(i);
        }
        return sum;
    }

    static final class Inner {
        static long price(int i) {
            double d = Math.sqrt(i * 31.0 + 7);
            return (long) (d * 100);
        }
    }
}
