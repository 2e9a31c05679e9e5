package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{
			name: "keeps osv with findings, in order",
			in: `{"config":{"scan_level":"symbol"}}
{"osv":{"id":"GO-1","summary":"a"}}{"osv":{"id":"GO-2"}}
{"finding":{"osv":"GO-2","trace":[{"module":"m"}]}}`,
			want: "{\n  \"config\": {\n    \"scan_level\": \"symbol\"\n  }\n}\n{\n  \"osv\": {\n    \"id\": \"GO-2\"\n  }\n}\n{\n  \"finding\": {\n    \"osv\": \"GO-2\",\n    \"trace\": [\n      {\n        \"module\": \"m\"\n      }\n    ]\n  }\n}\n",
		},
		{name: "empty stream", in: "", want: ""},
		{name: "not JSON", in: `{"osv":`, wantErr: "govulncheck message 0"},
		{name: "two fields", in: `{"osv":{},"finding":{}}`, wantErr: "has 2 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(strings.NewReader(tt.in), &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("run() wrote\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
