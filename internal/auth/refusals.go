package auth

import (
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// refusalLog writes the "token refused" lines, which tell the operator of
// a collector why its token stopped working, without letting a client
// flood the log: a token's refusals on one listener are logged at most
// once every refusalEvery, the next line saying how many were not (a
// collector retrying with an expired token every second writes a line a
// minute, not 86,400 a day); and since a client can send token IDs of
// its choosing, at most refusalBurst lines are written at once and one a
// second after, the next line saying how many refusals of other tokens
// were not logged. evident_auth_requests_total counts every refusal.
type refusalLog struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	last    map[refusalKey]*refusalState
	lines   *rate.Limiter
	dropped int // refusals the line limit kept out of the log since its last line
}

type refusalKey struct{ listener, token string }

type refusalState struct {
	at      time.Time // of the token's last line
	skipped int       // its refusals not logged since
}

const (
	refusalEvery = time.Minute
	refusalBurst = 10
	// maxRefusalKeys bounds the tokens remembered; past it, every token
	// is forgotten, and the line limit alone holds.
	maxRefusalKeys = 4096
)

func newRefusalLog(log *slog.Logger, now func() time.Time) *refusalLog {
	return &refusalLog{log: log, now: now, last: map[refusalKey]*refusalState{},
		lines: rate.NewLimiter(rate.Every(time.Second), refusalBurst)}
}

// refused logs, or counts, a refusal of token (its ID) on listener.
func (l *refusalLog) refused(listener, token, reason string) {
	now := l.now()
	l.mu.Lock()
	k := refusalKey{listener, token}
	st := l.last[k]
	if st != nil && now.Sub(st.at) < refusalEvery {
		st.skipped++
		l.mu.Unlock()
		return
	}
	if !l.lines.AllowN(now, 1) {
		l.dropped++
		l.mu.Unlock()
		return
	}
	if st == nil {
		if len(l.last) >= maxRefusalKeys {
			clear(l.last)
		}
		st = &refusalState{}
		l.last[k] = st
	}
	skipped, dropped := st.skipped, l.dropped
	st.at, st.skipped, l.dropped = now, 0, 0
	l.mu.Unlock()
	attrs := []any{"listener", listener, "token", token, "reason", reason}
	if skipped > 0 {
		attrs = append(attrs, "not_logged", skipped)
	}
	if dropped > 0 {
		attrs = append(attrs, "other_refusals_not_logged", dropped)
	}
	l.log.Info("token refused", attrs...)
}
