package catalog

import (
	"fmt"
	"strings"
)

// Product is one catalog entry. Description is HTML as the merchant supplied
// it: untrusted input, which is why the catalog parses it before showing it.
type Product struct {
	ID          int
	Name        string
	PriceCents  int
	Description string
}

var (
	adjectives = []string{"Crème", "Señorita", "Über", "Smørrebrød", "Café", "Façade", "Naïve", "Piñata", "Jalapeño", "Résumé", "Fjällräven", "Ångström"}
	nouns      = []string{"espresso cups", "linen apron", "cast-iron skillet", "chef's knife", "tea kettle", "salad bowl", "bread board", "pepper mill", "water carafe", "ceramic teapot"}
	materials  = []string{"stoneware", "stainless steel", "oiled walnut", "borosilicate glass", "enamelled cast iron", "organic linen"}
)

// Products returns the demo catalog: n products with deterministic names and
// long, realistic HTML descriptions (feature lists, specification tables,
// care instructions, entities and links), like a merchant feed.
func Products(n int) []Product {
	ps := make([]Product, n)
	for i := range ps {
		name := fmt.Sprintf("%s %s", adjectives[i%len(adjectives)], nouns[i%len(nouns)])
		ps[i] = Product{
			ID:          i + 1,
			Name:        name,
			PriceCents:  1500 + (i*733)%12000,
			Description: description(i, name),
		}
	}
	return ps
}

func description(i int, name string) string {
	var b strings.Builder
	mat := materials[i%len(materials)]
	fmt.Fprintf(&b, `<div class="product" data-sku="SKU-%05d"><h2>%s</h2>`, i+1, name)
	fmt.Fprintf(&b, `<p class="lead">Our <em>%s</em> is made from <strong>%s</strong> by a family workshop &amp; ships in recycled packaging. `, name, mat)
	b.WriteString(`Designed in Malmö, finished by hand in Oaxaca &mdash; every piece is slightly different.</p>`)
	b.WriteString(`<h3>Features</h3><ul>`)
	for f := range 12 {
		fmt.Fprintf(&b, `<li><span class="feature">Feature %d:</span> %s that stays beautiful after <b>%d</b> washes &ndash; <a href="/guides/%d-%d">read the guide</a></li>`, f+1, mat, 100+f*25, i, f)
	}
	b.WriteString(`</ul><h3>Specifications</h3><table class="specs"><thead><tr><th>Property</th><th>Value</th><th>Tolerance</th></tr></thead><tbody>`)
	for r := range 40 {
		fmt.Fprintf(&b, `<tr><td>Dimension %c%d</td><td>%d.%d&nbsp;cm</td><td>&plusmn;%d&nbsp;mm</td></tr>`, 'A'+rune(r%26), r, 10+r, (i+r)%10, 1+r%3)
	}
	b.WriteString(`</tbody></table><h3>Care</h3>`)
	for p := range 16 {
		fmt.Fprintf(&b, `<p>Step %d. Rinse with warm water, dry with a soft cloth and <i>never</i> use abrasive sponges on the %s surface. `, p+1, mat)
		b.WriteString(`Store in a dry place; résumé the seasoning every few months if the finish looks dull. <br>`)
		fmt.Fprintf(&b, `Questions? <a href="mailto:care@shop.example">care@shop.example</a> or <a href="/faq#care-%d">our FAQ</a>.</p>`, p)
	}
	b.WriteString(`<h3>Reviews</h3><div class="reviews">`)
	for r := range 24 {
		fmt.Fprintf(&b, `<blockquote><p>&ldquo;Lovely %s, exactly as described. Naïve me expected less!&rdquo;</p><footer>&mdash; Customer %d, <time datetime="2026-0%d-1%d">2026</time></footer></blockquote>`, name, r+1, 1+r%9, r%10)
	}
	b.WriteString(`</div></div>`)
	return b.String()
}
