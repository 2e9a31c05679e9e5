package com.example.orders;

/** Order is the bean that tagged documents name. */
public class Order {
    public int id;
    public String sku;
    public int qty;
}
