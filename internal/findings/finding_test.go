package findings

import "testing"

func TestServiceName(t *testing.T) {
	tests := []struct {
		artifact, want string
	}{
		{"registry.example.com/shop/checkout:1.4.2", "checkout"},
		{"registry.example.com:5000/shop/checkout", "checkout"},
		{"checkout@sha256:0123abcd", "checkout"},
		{"ghcr.io/shop/checkout:1.4@sha256:0123abcd", "checkout"},
		{"example.com/shop/cmd/gateway", "gateway"},
		{"example.com/shop/cmd/gateway/v2", "gateway"},
		{"example.com/v2", "example.com"},
		{"v2", "v2"},
		{"./services/orders/", "orders"},
		{`C:\src\orders`, "orders"},
		{"app", "app"},
		{".", ""},
		{"/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ServiceName(tt.artifact); got != tt.want {
			t.Errorf("ServiceName(%q) = %q, want %q", tt.artifact, got, tt.want)
		}
	}
}

func TestCommonPath(t *testing.T) {
	tests := []struct {
		paths []string
		want  string
	}{
		{nil, ""},
		{[]string{"example.com/shop/cmd/gateway"}, "example.com/shop/cmd/gateway"},
		{[]string{"example.com/shop/cmd/gateway", "example.com/shop/cmd/orders", "example.com/shop/internal/store"}, "example.com/shop"},
		{[]string{"example.com/shop/cmd/gate", "example.com/shop/cmd/gateway"}, "example.com/shop/cmd"},
		{[]string{"example.com/a", "example.org/b"}, ""},
	}
	for _, tt := range tests {
		if got := commonPath(tt.paths); got != tt.want {
			t.Errorf("commonPath(%q) = %q, want %q", tt.paths, got, tt.want)
		}
	}
}
