package alert

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/detect"
)

// BenchmarkRoute routes exploit-payload alerts as a scanner's requests
// raise them: one key again and again (all duplicates after the first),
// and keys that take turns among eight; each observed, as a detection's
// alerts are.
func BenchmarkRoute(b *testing.B) {
	for _, keys := range []int{1, 8} {
		b.Run(strconv.Itoa(keys)+"-keys", func(b *testing.B) {
			r, err := NewRouter(DefaultConfig(), nil, Deps{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			alerts := make([]detect.Alert, keys)
			for i := range alerts {
				alerts[i] = firstExec()
				alerts[i].Kind = detect.KindExploitPayload
				alerts[i].DedupeKey = "exploit_payload|shop|GET /search|sqli-tautology|" + strconv.Itoa(i)
				alerts[i].Observed = t0.Add(time.Duration(i) * time.Millisecond)
				alerts[i].ReceivedAt = time.Now()
			}
			i := 0
			for b.Loop() {
				r.Fire(alerts[i%keys])
				i++
			}
		})
	}
}
