package com.example.inventory;

import java.util.ArrayList;
import java.util.List;

/** An inventory item, a JavaBean so that SnakeYAML can build it. */
public class Item {
    private String sku;
    private String name;
    private int quantity;
    private double price;
    private List<String> tags = new ArrayList<>();

    public String getSku() { return sku; }
    public void setSku(String sku) { this.sku = sku; }
    public String getName() { return name; }
    public void setName(String name) { this.name = name; }
    public int getQuantity() { return quantity; }
    public void setQuantity(int quantity) { this.quantity = quantity; }
    public double getPrice() { return price; }
    public void setPrice(double price) { this.price = price; }
    public List<String> getTags() { return tags; }
    public void setTags(List<String> tags) { this.tags = tags; }

    /** A batch of items, the document POST /items/import reads. */
    public static class Batch {
        private String supplier;
        private List<Item> items = new ArrayList<>();

        public String getSupplier() { return supplier; }
        public void setSupplier(String supplier) { this.supplier = supplier; }
        public List<Item> getItems() { return items; }
        public void setItems(List<Item> items) { this.items = items; }
    }
}
