package waf

import (
	"errors"
	"regexp"
	"testing"
)

func TestRouteRegex(t *testing.T) {
	tests := []struct {
		name, route   string
		match, reject []string
	}{
		{"literal", "/search", []string{"/search", "/search?q=tea"}, []string{"/search/x", "/searchx", "/a/search"}},
		// What routers take for the route besides (Express and ASP.NET
		// Core: case, a trailing slash; Spring MVC: a suffix; servlet
		// containers: ";name=value" in any segment): each skipped the
		// patch.
		{"variants routers take", "/search", []string{"/search/", "/SEARCH", "/Search?q=tea", "/search;jsessionid=1", "/search.json", "/search.json;x=1/?q=1"},
			[]string{"/search//", "/search/.json", "/searchjson"}},
		{"variants of a parameter's route", "/users/{id}/orders", []string{"/users/7/orders/", "/USERS/7/Orders", "/users;x=1/7/orders"}, []string{"/users/7/orders/x"}},
		{"variants after a parameter", "/users/{id}", []string{"/users/7/", "/Users/7"}, []string{"/users/7/x", "/users/"}},
		{"net/http wildcard", "/products/{id}", []string{"/products/1", "/products/..%2F..%2Fadmin", "/products/1?x=1"}, []string{"/products", "/products/1/2", "/products/"}},
		{"rest wildcard", "/files/{path...}", []string{"/files/a/b/c", "/files/"}, []string{"/file"}},
		{"express param", "/users/:id/orders", []string{"/users/7/orders"}, []string{"/users/orders"}},
		{"catch-all", "/static/*", []string{"/static/css/a.css"}, []string{"/stat"}},
		{"subtree", "/assets/", []string{"/assets/", "/assets/x/y"}, []string{"/assets"}},
		{"exact root", "/{$}", []string{"/"}, []string{"/x"}},
		// net/http's "/" is the catch-all: a handler mounted there
		// serves every path no other pattern takes.
		{"root", "/", []string{"/", "/x", "/a/b?q=1", "/?q=1"}, nil},
		{"regex metacharacters", "/v1.0/a+b", []string{"/v1.0/a+b"}, []string{"/v1x0/aab"}},
		{"param inside a segment", "/v{version}/x", []string{"/v2/x"}, []string{"/2/x"}},
		{"gorilla/mux pattern", "/products/{id:[0-9]+}", []string{"/products/1"}, []string{"/products/1/2"}},
		{"flask converter", "/items/<int:item_id>", []string{"/items/5", "/items/5?x=1"}, []string{"/items", "/items/5/6"}},
		{"flask param", "/users/<name>/orders", []string{"/users/ann/orders"}, []string{"/users/orders"}},
		{"flask path converter", "/files/<path:p>", []string{"/files/a/b/c", "/files/a"}, []string{"/file"}},
		{"flask path converter inside", "/files/<path:p>/edit", []string{"/files/a/b/edit"}, []string{"/files/a/b"}},
		{"starlette path converter", "/files/{file_path:path}", []string{"/files/a/b/c", "/files/a?x=1"}, []string{"/file"}},
		{"starlette int converter", "/items/{id:int}", []string{"/items/5"}, []string{"/items/5/6"}},
		{"asp.net core catch-all", "/api/{*slug}", []string{"/api/a/b"}, []string{"/ap"}},
		{"asp.net core catch-all, slashes kept", "/api/{**slug}", []string{"/api/a/b"}, []string{"/ap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := RouteRegex(tt.route)
			if err != nil {
				t.Fatal(err)
			}
			re := regexp.MustCompile(s)
			for _, m := range tt.match {
				if !re.MatchString(m) {
					t.Errorf("%s does not match %s", s, m)
				}
			}
			for _, m := range tt.reject {
				if re.MatchString(m) {
					t.Errorf("%s matches %s", s, m)
				}
			}
		})
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    Endpoint
		wantErr bool
	}{
		{in: "GET /products/{id}", want: Endpoint{"GET", "/products/{id}"}},
		{in: "GET GET /search", want: Endpoint{"GET", "/search"}},
		{in: "catalog.Catalog Get", wantErr: true},
		{in: "process orders", wantErr: true},
		{in: "GET search", wantErr: true},
		{in: "GET /a/{b", wantErr: true},
		{in: "POST /files.{p/..}", wantErr: true},
		{in: `GET /a"b`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEndpoint(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrRoute) {
					t.Errorf("err %v, want ErrRoute", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestDotSegmentsInScope: a Node.js server that routes on the WHATWG URL
// of req.url, as Node's documentation parses it, serves /./search,
// /a/../search and /%2e/search at /search (so do Tomcat and Kestrel, which
// normalize the path), and the exported rules, loaded in stock Coraza,
// matched the route on the path as sent: the shop's exploit reached the
// handler past its patch. The scope rule matches the path with its dot
// segments resolved too. A path that resolves elsewhere, or a route in the
// query, stays out of scope.
func TestDotSegmentsInScope(t *testing.T) {
	dir, _ := shopRules(t)
	w := loadExported(t, dir, "gateway.conf")
	tests := []struct {
		target  string
		blocked bool
	}{
		{"/search?q=%C0%AF", true},
		{"/./search?q=%C0%AF", true},
		{"/a/../search?q=%C0%AF", true},
		{"/%2e/search?q=%C0%AF", true},
		{"/a/%2e%2e/search?q=%C0%AF", true},
		{"/search/.?q=%C0%AF", true},
		{"/search/../products/1?q=%C0%AF", false},
		{"/products/1?next=/./search&q=%C0%AF", false},
		{"/./search?q=tea", false},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			_, by, err := replay(w, Request{Method: "GET", Target: tt.target})
			if err != nil || (by != 0) != tt.blocked {
				t.Errorf("denied by rule %d (%v), want denied %v", by, err, tt.blocked)
			}
		})
	}
}
