// Command trimfindings filters a `govulncheck -json` stream (stdin to stdout)
// down to what a recording needs: every config, SBOM, progress and finding
// message unchanged and in order, but only the osv messages of vulnerabilities
// that have at least one finding. govulncheck emits an osv message for every
// vulnerability of every required module whatever its version (for the
// standard library alone, about 180), which would make the recorded findings
// a few hundred kilobytes per service for no information.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trimfindings:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	var msgs []map[string]json.RawMessage
	found := map[string]bool{}
	for i := 0; ; i++ {
		var m map[string]json.RawMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("govulncheck message %d: %w", i, err)
		}
		if len(m) != 1 {
			return fmt.Errorf("govulncheck message %d: has %d fields, want exactly one", i, len(m))
		}
		if f, ok := m["finding"]; ok {
			var finding struct {
				OSV string `json:"osv"`
			}
			if err := json.Unmarshal(f, &finding); err != nil {
				return fmt.Errorf("govulncheck message %d: finding: %w", i, err)
			}
			found[finding.OSV] = true
		}
		msgs = append(msgs, m)
	}
	w := bufio.NewWriter(out)
	for i, m := range msgs {
		for key, raw := range m {
			if key == "osv" {
				var entry struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(raw, &entry); err != nil {
					return fmt.Errorf("govulncheck message %d: osv: %w", i, err)
				}
				if !found[entry.ID] {
					continue
				}
			}
			keyJS, err := json.Marshal(key)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			compact := append(append(append([]byte("{"), keyJS...), ':'), raw...)
			compact = append(compact, '}')
			if err := json.Indent(&buf, compact, "", "  "); err != nil {
				return fmt.Errorf("govulncheck message %d: %w", i, err)
			}
			buf.WriteByte('\n')
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
		}
	}
	return w.Flush()
}
