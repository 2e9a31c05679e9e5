package com.example.inventory;

import com.google.common.base.Joiner;
import com.google.common.hash.Hashing;
import com.google.common.io.BaseEncoding;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.Constructor;

/**
 * The service's logic. The vulnerable libraries are used as a real service
 * would: SnakeYAML 1.33 reads supplier batches into beans with its default
 * Constructor (CVE-2022-1471's path), Guava encodes item thumbnails and
 * hashes them (com.google.common.io, but never FileBackedOutputStream or
 * Files.createTempDir), and Commons Compress archives the inventory on an
 * admin route the traffic never calls.
 */
final class Inventory {
    private final Map<String, Item> items = new ConcurrentHashMap<>();
    private final Map<String, byte[]> thumbnails = new ConcurrentHashMap<>();

    Inventory() {
        Random r = new Random(7);
        for (int i = 0; i < 200; i++) {
            Item it = new Item();
            it.setSku(String.format("SKU-%04d", i));
            it.setName("item " + i);
            it.setQuantity(r.nextInt(100));
            it.setPrice(1 + r.nextInt(10000) / 100.0);
            it.getTags().add(i % 2 == 0 ? "even" : "odd");
            put(it);
        }
    }

    private void put(Item it) {
        items.put(it.getSku(), it);
        byte[] thumb = new byte[16 * 1024];
        new Random(it.getSku().hashCode()).nextBytes(thumb);
        thumbnails.put(it.getSku(), thumb);
    }

    /** Reads a YAML batch with SnakeYAML's default Constructor. */
    int importBatch(String yaml) {
        Yaml y = new Yaml(new Constructor(Item.Batch.class));
        Item.Batch batch = y.load(yaml);
        for (Item it : batch.getItems()) {
            put(it);
        }
        return batch.getItems().size();
    }

    /** One item as JSON, its thumbnail in base64 and an ETag. */
    String item(String sku) {
        Item it = items.get(sku);
        if (it == null) {
            return null;
        }
        byte[] thumb = thumbnails.get(sku);
        String b64 = BaseEncoding.base64().encode(thumb);
        String etag = Hashing.sha256().hashBytes(thumb).toString();
        return "{\"sku\":\"" + it.getSku() + "\",\"name\":\"" + it.getName() + "\",\"quantity\":" + it.getQuantity()
                + ",\"price\":" + it.getPrice() + ",\"etag\":\"" + etag + "\",\"thumbnail\":\"" + b64 + "\"}";
    }

    /** The SKUs in stock, comma-separated. */
    String list() {
        List<String> skus = new ArrayList<>();
        for (Item it : items.values()) {
            if (it.getQuantity() > 0) {
                skus.add(it.getSku());
            }
        }
        skus.sort(null);
        return Joiner.on(',').join(skus);
    }

    /** A tar archive of the inventory (the admin route the load never calls). */
    byte[] archive() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            for (Item it : items.values()) {
                byte[] body = item(it.getSku()).getBytes(StandardCharsets.UTF_8);
                TarArchiveEntry e = new TarArchiveEntry(it.getSku() + ".json");
                e.setSize(body.length);
                tar.putArchiveEntry(e);
                tar.write(body);
                tar.closeArchiveEntry();
            }
        }
        return out.toByteArray();
    }
}
