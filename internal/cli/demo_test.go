package cli

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the real example shop against evident serve for a while
// and checks that the table shows findings executed and that the first
// execution alert fired. It needs the Go toolchain and the shop's
// modules, and skips when the shop cannot be built.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo builds and runs the example shop for about a minute")
	}
	var out bytes.Buffer
	g := &globals{stdout: &out, stderr: io.Discard}
	fl := demoFlags{duration: 40 * time.Second, example: filepath.Join("..", "..", "examples", "shop")}
	err := runDemo(t.Context(), g, fl, false)
	if errors.Is(err, errBuildExample) {
		t.Skipf("the example shop cannot be built here (no Go toolchain or module cache?): %v", err)
	}
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`API http://127\.0\.0\.1:\d+/api/v1`),
		regexp.MustCompile(`\(0 executed, 0 loaded, 0 not_observed, \d+ unknown\)`), // before any telemetry
		regexp.MustCompile(`\([1-9]\d* executed`),
		regexp.MustCompile(`ALERT .* first_execution: GO-2026-5970`),
		regexp.MustCompile(`evident demo: stopping`),
	} {
		if !want.MatchString(got) {
			t.Errorf("demo output does not match %s:\n%s", want, tail(got, 4000))
		}
	}
	// The shop's binaries, database and logs lived in a temporary
	// directory, removed on the way out.
	if m := regexp.MustCompile(`logs in (\S+);`).FindStringSubmatch(got); m == nil {
		t.Error("the demo did not say where its logs are")
	} else if _, err := os.Stat(m[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary directory %s is still there (%v)", m[1], err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[strings.LastIndex(s[:len(s)-n], "\n")+1:]
}
