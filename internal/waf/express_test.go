package waf

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/evidentsec/evident/internal/knowledge"
)

// TestRedirectVariantsInExpress sends every variant of CVE-2024-29041 and
// every sample of the legitimate URL corpus to a vulnerable express
// (EVIDENT_EXPRESS_NODE_PATH: a node_modules directory holding express
// before 4.19.2, such as 4.18.2 of node-reviews) through
// testdata/express/location.js: for each variant, the Location header that
// res.location writes sends the browser to another host than the target
// names (the allow-list bypass); for each legitimate target, to the same
// host. It skips, saying why, without node or the directory.
func TestRedirectVariantsInExpress(t *testing.T) {
	dir := os.Getenv("EVIDENT_EXPRESS_NODE_PATH")
	if dir == "" {
		t.Skip("EVIDENT_EXPRESS_NODE_PATH is not set (a node_modules directory with express 4.18.2)")
	}
	if _, err := os.Stat(filepath.Join(dir, "express", "package.json")); err != nil {
		t.Skipf("no express in EVIDENT_EXPRESS_NODE_PATH: %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("no node: %v", err)
	}
	cmd := exec.Command(node, filepath.Join("testdata", "express", "location.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Process.Kill()
		cmd.Wait()
	}()
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("location.js: no port: %v", err)
	}
	base := "http://127.0.0.1:" + port[:len(port)-1] + "/location"

	type answer struct{ Version, Target, Location, Intended, Actual string }
	ask := func(s Sample) answer {
		t.Helper()
		next, referer := s.Payload, ""
		if s.Encoded {
			if next, err = url.QueryUnescape(s.Payload); err != nil {
				t.Fatal(err)
			}
		}
		if s.In == InHeader {
			next, referer = "back", s.Payload
		}
		req, err := http.NewRequest("GET", base+"?next="+url.QueryEscape(next), nil)
		if err != nil {
			t.Fatal(err)
		}
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	x, err := knowledge.DefaultExploits()
	if err != nil {
		t.Fatal(err)
	}
	legit, err := legitimateCorpus()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range x.Lookup("CVE-2024-29041")[0].Variants {
		a := ask(s)
		t.Logf("express %s, variant %q: %s -> Location %s: %s, not %s", a.Version, s.Name, a.Target, a.Location, a.Actual, a.Intended)
		if a.Actual == a.Intended {
			t.Errorf("variant %q: express %s sends the browser to %s, the target's own host: no bypass", s.Name, a.Version, a.Actual)
		}
	}
	for _, s := range legit["url"] {
		if a := ask(s); a.Actual != a.Intended {
			t.Errorf("legitimate %q: express %s sends the browser to %s, not %s", s.Name, a.Version, a.Actual, a.Intended)
		}
	}
}
