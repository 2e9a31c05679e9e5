package sourcetest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Recording is telemetry recorded to files, as examples/shop/recorded
// holds it: profiles/<service>/*.pb.gz and traces.jsonl (OTLP JSON lines).
type Recording struct {
	Profiles map[string][][]byte
	Traces   []ptrace.Traces
}

// LoadRecording reads the recording in dir.
func LoadRecording(dir string) (*Recording, error) {
	r := &Recording{Profiles: map[string][][]byte{}}
	files, err := filepath.Glob(filepath.Join(dir, "profiles", "*", "*.pb.gz"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load recording: %w", err)
		}
		svc := filepath.Base(filepath.Dir(f))
		r.Profiles[svc] = append(r.Profiles[svc], raw)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "traces.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("load recording: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 64<<20)
	var u ptrace.JSONUnmarshaler
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		td, err := u.UnmarshalTraces(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("load recording: traces.jsonl line %d: %w", n, err)
		}
		r.Traces = append(r.Traces, td)
	}
	return r, sc.Err()
}

// Servers returns a Pyroscope and a Tempo holding the recording.
func (r *Recording) Servers() (*Pyroscope, *Tempo, error) {
	p, err := NewPyroscope(r.Profiles)
	if err != nil {
		return nil, nil, err
	}
	t := NewTempo()
	for _, td := range r.Traces {
		t.Add(td)
	}
	return p, t, nil
}
