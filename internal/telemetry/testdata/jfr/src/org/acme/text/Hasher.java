package org.acme.text;

/** A library-like class in another package. */
public final class Hasher {
    public long hash(String s) {
        long h = 1125899906842597L;
        for (int r = 0; r < 50; r++) {
            for (int i = 0; i < s.length(); i++) {
                h = 31 * h + s.charAt(i);
            }
        }
        return h;
    }
}
