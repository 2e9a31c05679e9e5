package admission

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTicket(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBufferedBytes = 1 << 20
	c, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Ticket(), c.Ticket()
	if err := a.Reserve(700 << 10); err != nil {
		t.Fatal(err)
	}
	if err := b.Reserve(400 << 10); !errors.Is(err, ErrBudget) {
		t.Errorf("over the budget: %v, want ErrBudget", err)
	}
	if got := c.Buffered(); got != 700<<10 {
		t.Errorf("buffered %d after a refused reservation, want %d", got, 700<<10)
	}
	// A reader reserves what it reads, in steps, and fails once the
	// budget is spent.
	n, err := io.Copy(io.Discard, b.Reader(bytes.NewReader(make([]byte, 1<<20))))
	if !errors.Is(err, ErrBudget) || n < 250<<10 || n > 324<<10 {
		t.Errorf("reader: %d bytes, %v; want about the 324 KiB left, then ErrBudget", n, err)
	}
	a.Release()
	b.Release()
	b.Release()
	if got := c.Buffered(); got != 0 {
		t.Errorf("buffered %d after every release, want 0", got)
	}
	n, err = io.Copy(io.Discard, c.Ticket().Reader(strings.NewReader("small")))
	if err != nil || n != 5 {
		t.Errorf("small read: %d, %v", n, err)
	}
}

// TestMemoryLimit: above the soft limit Admit refuses, and admits again
// once memory is back below it.
func TestMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	cfg := DefaultConfig()
	cfg.MemoryLimitBytes = 64 << 20
	cfg.RefuseAbovePercent = 10
	cfg.CheckInterval = time.Millisecond
	c := started(t, cfg, prometheus.NewPedanticRegistry())
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("runtime memory limit %d, want %d", got, 64<<20)
	}
	hold := make([]byte, 16<<20) // above 10% of 64 MiB
	for i := range hold {
		hold[i] = 1
	}
	waitFor(t, func() bool { return c.Admit() != nil })
	if err := c.Admit(); !errors.Is(err, ErrMemory) {
		t.Errorf("Admit: %v, want ErrMemory", err)
	}
	if got := testutil.ToFloat64(c.memLimited); got != 1 {
		t.Errorf("evident_admission_memory_limited %v, want 1", got)
	}
	hold = nil
	// Raising the limit stands for the memory falling back.
	debug.SetMemoryLimit(1 << 40)
	c.limit.Store(1 << 40)
	waitFor(t, func() bool { return c.Admit() == nil })
	_ = hold
}

// started returns a controller of cfg, started, shut down when t ends.
func started(t *testing.T, cfg Config, reg prometheus.Registerer) *Controller {
	t.Helper()
	c, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown(context.Background()) })
	return c
}

// TestGCPercent: Start sets the collector's target to gc_percent, unless
// it is 0 or the GOGC environment variable is set, which then wins.
func TestGCPercent(t *testing.T) {
	const runtimes = 90 // the target before Start, set by the test
	for _, tt := range []struct {
		name    string
		percent int
		env     string // GOGC; "" unset
		want    int64
	}{
		{"default", DefaultConfig().GCPercent, "", 50},
		{"set", 75, "", 75},
		{"zero keeps the runtime's", 0, "", runtimes},
		{"GOGC wins", 50, "200", runtimes},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := debug.SetGCPercent(runtimes)
			defer debug.SetGCPercent(before)
			if tt.env != "" {
				t.Setenv("GOGC", tt.env)
			} else if v, ok := os.LookupEnv("GOGC"); ok {
				// Unset for this test; t.Setenv puts it back after.
				t.Setenv("GOGC", v)
				os.Unsetenv("GOGC")
			}
			cfg := DefaultConfig()
			cfg.GCPercent = tt.percent
			started(t, cfg, nil)
			if got := gcPercent(); got != tt.want {
				t.Errorf("GC percent %d after Start, want %d", got, tt.want)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLifecycle(t *testing.T) {
	c := Default()
	if err := c.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown without Start: %v", err)
	}
	for range 2 {
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := c.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Admit(); err != nil {
		t.Errorf("Admit without a memory limit: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{name: "default", edit: func(*Config) {}},
		{name: "limit", edit: func(c *Config) { c.MemoryLimitBytes = 1 << 30 }},
		{name: "negative limit", edit: func(c *Config) { c.MemoryLimitBytes = -1 }, want: "memory_limit_bytes"},
		{name: "tiny limit", edit: func(c *Config) { c.MemoryLimitBytes = 1 << 20 }, want: "at least 64 MiB"},
		{name: "percent", edit: func(c *Config) { c.RefuseAbovePercent = 101 }, want: "refuse_above_percent"},
		{name: "interval", edit: func(c *Config) { c.CheckInterval = 0 }, want: "check_interval"},
		{name: "budget", edit: func(c *Config) { c.MaxBufferedBytes = 1000 }, want: "max_buffered_bytes"},
		{name: "gc percent", edit: func(c *Config) { c.GCPercent = -1 }, want: "gc_percent"},
		{name: "runtime's gc percent", edit: func(c *Config) { c.GCPercent = 0 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v, want ErrConfig naming %q", err, tt.want)
			}
		})
	}
}

// TestReserveWait: a reservation the budget cannot hold now waits for
// other tickets to give bytes back, and fails with ErrBudget when its
// context ends first; one larger than the whole budget fails at once.
func TestReserveWait(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBufferedBytes = 1 << 20
	c, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	holder, waiter := c.Ticket(), c.Ticket()
	if err := holder.Reserve(900 << 10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := waiter.ReserveWait(ctx, 200<<10); !errors.Is(err, ErrBudget) {
		t.Errorf("wait until the context ends: %v, want ErrBudget", err)
	}
	if err := waiter.ReserveWait(t.Context(), 2<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("more than the budget: %v, want ErrTooLarge", err)
	}
	done := make(chan error, 1)
	go func() { done <- waiter.ReserveWait(t.Context(), 200<<10) }()
	// Giving back too little wakes the waiter, which waits again.
	if err := holder.Resize(850 << 10); err != nil {
		t.Fatal(err)
	}
	holder.Release()
	if err := <-done; err != nil {
		t.Errorf("after the release: %v", err)
	}
	if got := c.Buffered(); got != 200<<10 {
		t.Errorf("buffered %d, want the waiter's %d", got, 200<<10)
	}
	waiter.Release()
	if err := waiter.ReserveWait(t.Context(), 1); !errors.Is(err, ErrBudget) {
		t.Errorf("on a released ticket: %v, want ErrBudget at once", err)
	}
}

// TestResize: shrinking gives the rest back; growing reserves the
// difference, and on a refusal the ticket keeps what it held.
func TestResize(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBufferedBytes = 1 << 20
	c, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Ticket(), c.Ticket()
	for _, step := range []struct {
		n       int64
		wantErr error
		want    int64
	}{
		{n: 800 << 10, want: 800 << 10},
		{n: 100 << 10, want: 100 << 10},
		{n: 300 << 10, want: 300 << 10},
	} {
		if err := a.Resize(step.n); !errors.Is(err, step.wantErr) {
			t.Errorf("Resize(%d): %v, want %v", step.n, err, step.wantErr)
		}
		if got := c.Buffered(); got != step.want {
			t.Errorf("after Resize(%d): buffered %d, want %d", step.n, got, step.want)
		}
	}
	if err := b.Reserve(600 << 10); err != nil {
		t.Fatal(err)
	}
	if err := a.Resize(500 << 10); !errors.Is(err, ErrBudget) {
		t.Errorf("grow past the budget: %v, want ErrBudget", err)
	}
	if got := c.Buffered(); got != 900<<10 {
		t.Errorf("after a refused Resize: buffered %d, want %d", got, 900<<10)
	}
	a.Release()
	b.Release()
	if got := c.Buffered(); got != 0 {
		t.Errorf("buffered %d after every release, want 0", got)
	}
}

// TestReaderReservesItsBuffer: a reader reserves, before each read, the
// room the caller's buffer offers (at most 64 KiB), not more: a request
// waiting for its body holds the buffer it waits with, so that many
// stalled HTTP/2 streams cannot each hold a 64 KiB step of the budget
// for a buffer of 16 KiB.
func TestReaderReservesItsBuffer(t *testing.T) {
	for _, tt := range []struct {
		name string
		bufs []int // the sizes of successive reads' buffers
		body int   // bytes the source has
		want int64 // reserved after the reads
	}{
		{"a 16 KiB buffer, one byte arrived", []int{16 << 10}, 1, 16 << 10},
		{"the rest of that buffer next", []int{16 << 10, 16<<10 - 1}, 1, 16 << 10},
		{"a larger buffer, capped", []int{1 << 20}, 1, 64 << 10},
		{"buffers filled in turn", []int{16 << 10, 16 << 10, 32 << 10}, 64 << 10, 64 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(DefaultConfig(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Ticket().Reader(bytes.NewReader(make([]byte, tt.body)))
			for _, n := range tt.bufs {
				if _, err := r.Read(make([]byte, n)); err != nil && err != io.EOF {
					t.Fatal(err)
				}
			}
			if got := c.Buffered(); got != tt.want {
				t.Errorf("reserved %d, want %d", got, tt.want)
			}
		})
	}
}

// TestReserveReadOrder: when the budget cannot hold what requests being
// read need, the first refused waits for room, which neither the others
// refused nor new requests may take, and gets it when another gives its
// bytes back; the others are refused at once.
func TestReserveReadOrder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBufferedBytes = 1 << 20
	c, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	older, younger := c.Ticket(), c.Ticket()
	if err := older.Reserve(600 << 10); err != nil {
		t.Fatal(err)
	}
	if err := younger.Reserve(400 << 10); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- older.ReserveRead(200 << 10) }()
	for c.waiting.Load() == nil { // until the older one waits
		time.Sleep(time.Millisecond)
	}
	if err := younger.ReserveRead(1); !errors.Is(err, ErrBudget) {
		t.Errorf("the younger request: %v, want ErrBudget at once", err)
	}
	younger.Release()
	// The room the younger one gave back is the older one's: a new
	// request cannot take it before.
	if err := c.Ticket().Reserve(900 << 10); !errors.Is(err, ErrBudget) {
		t.Errorf("a new request took the room the oldest waits for: %v", err)
	}
	if err := <-waited; err != nil {
		t.Errorf("the older request: %v, want its bytes once the younger gave them back", err)
	}
	older.Release()
	if n := c.Buffered(); n != 0 {
		t.Errorf("%d bytes reserved after every release", n)
	}
	if w := c.waiting.Load(); w != nil {
		t.Errorf("a request %+v still waits after every release", w)
	}
}

// TestReserveReadGivesUp: the oldest request waits for room at most
// readWait, and is then refused.
func TestReserveReadGivesUp(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBufferedBytes = 1 << 20
	c, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := c.Ticket()
	if err := held.Reserve(1 << 20); err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	tk := c.Ticket()
	defer tk.Release()
	start := time.Now()
	if err := tk.ReserveRead(1); !errors.Is(err, ErrBudget) {
		t.Errorf("ReserveRead with the budget held throughout: %v, want ErrBudget", err)
	}
	if waited := time.Since(start); waited < readWait {
		t.Errorf("refused after %v, want after waiting readWait (%v)", waited, readWait)
	}
}
