package pyroscope

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/evidentsec/evident/internal/telemetry"
)

// jfrFixture is telemetry's recording of a small Java program.
const jfrFixture = "../../telemetry/testdata/jfr/shop.jfr"

// agentForm builds the multipart body the Pyroscope Java agent sends:
// the gzipped recording as form file jfr, and a LabelsSnapshot as labels.
func agentForm(t *testing.T, jfr, labels []byte) ([]byte, string) {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(jfr)
	zw.Close()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range []struct {
		name string
		data []byte
	}{{"jfr", gz.Bytes()}, {"labels", labels}} {
		fw, err := w.CreateFormFile(p.name, p.name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(p.data)
	}
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func post(t *testing.T, url, contentType string, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// jfrAndLabels returns the recording of the fixture and the labels the
// agent sends with it: an empty snapshot, since the JDK's own recorder
// writes no context ids.
func jfrAndLabels(t *testing.T) (jfr, labels []byte) {
	t.Helper()
	jfr, err := os.ReadFile(jfrFixture)
	if err != nil {
		t.Fatal(err)
	}
	labels = protowire.AppendTag(labels, 2, protowire.BytesType)
	labels = protowire.AppendBytes(labels, []byte{0x08, 0x01, 0x12, 0x01, 'x'})
	return jfr, labels
}

// TestIngestJFR posts a recording the way the Pyroscope Java agent does
// (format=jfr, spyName=javaspy, from/until in seconds, multipart parts
// jfr and labels) and checks the Java frames reach the consumer.
func TestIngestJFR(t *testing.T) {
	jfr, labels := jfrAndLabels(t)
	body, ct := agentForm(t, jfr, labels)
	rec := &recorder{}
	r, _ := startReceiver(t, testConfig(), rec)
	url := "http://" + r.Addr() + IngestPath + "?name=inventory.cpu%7Benv%3Dprod%7D&format=jfr&spyName=javaspy&sampleRate=100&units=samples&aggregationType=sum&from=1764000000&until=1764000010"
	if status := post(t, url, ct, body); status != http.StatusOK {
		t.Fatalf("status %d, want 200", status)
	}
	got := rec.all()
	if len(got) == 0 || got[0].SampleType != "cpu" || got[0].Service != "inventory" {
		t.Fatalf("batches %+v, want a cpu profile of inventory", got)
	}
	if got[0].Start != time.Unix(1764000000, 0).UTC() || got[0].Duration != 10*time.Second {
		t.Errorf("window %v + %v, want the query's from/until", got[0].Start, got[0].Duration)
	}
	if !strings.Contains(got[0].Source, "javaspy") || !hasFunction(got[0], "org/acme/text/Hasher.hash") {
		t.Errorf("batch from %q lacks org/acme/text/Hasher.hash", got[0].Source)
	}
	if status := post(t, url, ct, []byte("--x\r\n")); status != http.StatusBadRequest {
		t.Errorf("broken form: status %d, want 400", status)
	}
	noJFR, noJFRType := agentForm(t, nil, nil)
	noJFR = bytes.Replace(noJFR, []byte(`name="jfr"`), []byte(`name="profile"`), 1)
	if status := post(t, url, noJFRType, noJFR); status != http.StatusBadRequest {
		t.Errorf("form without jfr: status %d, want 400", status)
	}
}

// TestIngestFolded posts folded stacks as Pyroscope's curl example does
// (no format), with format=folded, and as lines.
func TestIngestFolded(t *testing.T) {
	rec := &recorder{}
	r, _ := startReceiver(t, testConfig(), rec)
	base := "http://" + r.Addr() + IngestPath + "?name=worker&from=1764000000&until=1764000010"
	for _, tc := range []struct{ query, body string }{
		{"", "main (app.py:3);load (yaml/__init__.py:79) 100\nmain (app.py:3);dump (yaml/__init__.py:90) 200\n"},
		{"&format=folded", "java/lang/Thread.run_[j];org/yaml/snakeyaml/Yaml.load_[i] 5\n"},
		{"&format=lines", "a;b\na;b\n"},
	} {
		if status := post(t, base+tc.query, "", []byte(tc.body)); status != http.StatusOK {
			t.Fatalf("%q: status %d, want 200", tc.query, status)
		}
	}
	got := rec.all()
	if len(got) != 3 {
		t.Fatalf("%d batches, want 3", len(got))
	}
	for i, want := range []struct {
		fn    string
		count int64
	}{{"load", 100}, {"org/yaml/snakeyaml/Yaml.load", 5}, {"b", 2}} {
		b := got[i]
		if b.Service != "worker" || !hasFunction(b, want.fn) || b.Samples[0].Count != want.count {
			t.Errorf("batch %d: %+v, want worker's %s counted %d", i, b, want.fn, want.count)
		}
	}
}

func hasFunction(b *telemetry.ProfileBatch, fn string) bool {
	for _, loc := range b.Locations {
		for _, f := range loc {
			if f.Function == fn {
				return true
			}
		}
	}
	return false
}

// TestIngestJFRLimit: max_request_bytes holds for the request, the
// labels and the recording together, not for each: a request whose
// labels and recording are each within it and together over it is
// refused with 413 (it was taken, holding up to twice the limit).
func TestIngestJFRLimit(t *testing.T) {
	jfr, labels := jfrAndLabels(t)
	// An unknown field, which a LabelsSnapshot's reader skips.
	labels = protowire.AppendTag(labels, 15, protowire.BytesType)
	labels = protowire.AppendBytes(labels, make([]byte, 4096))
	body, ct := agentForm(t, jfr, labels)
	url := "http://%s" + IngestPath + "?name=inventory.cpu&format=jfr&spyName=javaspy&from=1764000000&until=1764000010"
	for _, tc := range []struct {
		name   string
		limit  int64
		status int
	}{
		{"labels and recording within the limit", int64(len(jfr) + len(labels)), http.StatusOK},
		{"each within the limit, both over it", int64(len(jfr) + len(labels) - 1), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxRequestBytes = tc.limit
			rec := &recorder{}
			r, _ := startReceiver(t, cfg, rec)
			if status := post(t, fmt.Sprintf(url, r.Addr()), ct, body); status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if got := len(rec.all()) > 0; got != (tc.status == http.StatusOK) {
				t.Errorf("consumer got batches: %v", got)
			}
		})
	}
}
