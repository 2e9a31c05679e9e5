package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

var (
	firstNames = []string{"José", "Zoë", "Søren", "Amélie", "Björn", "Łukasz", "Chloé", "Ñuño", "Ingrid", "Mehmet", "Renée", "Jürgen", "Aoife", "François", "Dagný", "Øystein"}
	lastNames  = []string{"Álvarez", "Müller", "Kierkegård", "Poulain", "Ström", "Wałęsa", "Dubois", "Peña", "Bergström", "Yılmaz", "Lefèvre", "Schäfer", "Ní Bhriain", "Gonçalves", "Þórsdóttir", "Hæreid"}
	streets    = []string{"Hauptstraße 5, 80331 München", "Rue de la Paix 12, 75002 Paris", "Calle de Alcalá 48, 28014 Madrid", "Storgatan 9, 11451 Stockholm", "Nørrebrogade 30, 2200 København", "Ulica Świętokrzyska 7, 00-360 Warszawa", "Rua Augusta 101, 1100-048 Lisboa", "Laugavegur 22, 101 Reykjavík"}
	goods      = []string{"Crème espresso cups", "Señorita linen apron", "Über cast-iron skillet", "Smørrebrød bread board", "Café tea kettle", "Façade salad bowl", "Piñata pepper mill", "Jalapeño water carafe"}
)

// SeedItem is one order line as stored in orders.items (JSON).
type SeedItem struct {
	ProductID  int    `json:"product_id"`
	Name       string `json:"name"`
	Quantity   int    `json:"quantity"`
	PriceCents int    `json:"price_cents"`
}

// Seed fills an empty database with a deterministic history of customers
// orders, as a shop that has been trading for a while would have. It does
// nothing when customers already exist. It runs at startup, outside any
// request, so it is not traced.
func (d *DB) Seed(ctx context.Context, customers, orders int) error {
	var n int
	if err := d.sql.QueryRowContext(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil {
		return fmt.Errorf("count customers in %s: %w", d.path, err)
	}
	if n > 0 {
		return nil
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed %s: %w", d.path, err)
	}
	defer tx.Rollback()
	for i := range customers {
		first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames)+i)%len(lastNames)]
		if _, err := tx.ExecContext(ctx, "INSERT INTO customers (id, name, email, address, phone) VALUES (?, ?, ?, ?, ?)",
			i+1, first+" "+last, fmt.Sprintf("customer%04d@mail.example", i+1), streets[i%len(streets)], fmt.Sprintf("+49 30 %07d", 1000000+i*37)); err != nil {
			return fmt.Errorf("seed customer %d in %s: %w", i+1, d.path, err)
		}
	}
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	for i := range orders {
		items := make([]SeedItem, 1+i%4)
		total := 0
		for k := range items {
			g := (i + k*3) % len(goods)
			items[k] = SeedItem{ProductID: g + 1, Name: goods[g], Quantity: 1 + (i+k)%3, PriceCents: 1500 + g*733}
			total += items[k].Quantity * items[k].PriceCents
		}
		js, err := json.Marshal(items)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders (customer_id, items, total_cents, status, payment_ref, created_at) VALUES (?, ?, ?, 'paid', ?, ?)",
			1+(i*7)%customers, string(js), total, fmt.Sprintf("ch_seed_%05d", i), start.Add(time.Duration(i)*97*time.Minute).Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("seed order %d in %s: %w", i+1, d.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed %s: %w", d.path, err)
	}
	return nil
}
