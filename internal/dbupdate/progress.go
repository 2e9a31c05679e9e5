package dbupdate

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// reporter shows the progress of concurrent downloads. Its methods are
// safe for concurrent use.
type reporter interface {
	// begin is called when a response body starts, again on each retry;
	// size is -1 when unknown.
	begin(name string, size int64)
	// add reports n more bytes received.
	add(name string, n int64)
	// retry reports that attempt (of at most attempts) failed and will be
	// repeated after wait.
	retry(name string, attempt, attempts int, wait time.Duration, err error)
	// done reports a file's outcome.
	done(r FileResult)
	// close ends the output; no call may follow.
	close()
}

func newReporter(w io.Writer, bar bool) reporter {
	switch {
	case w == nil:
		return silentReporter{}
	case bar:
		return &barReporter{w: w, bars: make(map[string]*progressbar.ProgressBar)}
	default:
		return &plainReporter{w: w}
	}
}

type silentReporter struct{}

func (silentReporter) begin(string, int64)                          {}
func (silentReporter) add(string, int64)                            {}
func (silentReporter) retry(string, int, int, time.Duration, error) {}
func (silentReporter) done(FileResult)                              {}
func (silentReporter) close()                                       {}

// plainReporter writes one line per outcome and per retry: readable in
// CI logs and files, where redrawn bars are noise.
type plainReporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainReporter) begin(string, int64) {}
func (p *plainReporter) add(string, int64)   {}
func (p *plainReporter) close()              {}

func (p *plainReporter) retry(name string, attempt, attempts int, wait time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, retryLine(name, attempt, attempts, wait, err))
}

func (p *plainReporter) done(r FileResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, resultLine(r))
}

func retryLine(name string, attempt, attempts int, wait time.Duration, err error) string {
	return fmt.Sprintf("%s: attempt %d/%d failed, retrying in %v: %v", name, attempt, attempts, wait, err)
}

func resultLine(r FileResult) string {
	switch r.Status {
	case StatusDownloaded:
		return fmt.Sprintf("%s: downloaded %s, %s in %v", r.Name, formatBytes(r.Bytes), records(r.Records), r.Duration.Round(time.Millisecond))
	case StatusUpToDate:
		return fmt.Sprintf("%s: up to date (%s)", r.Name, records(r.Records))
	default:
		return fmt.Sprintf("%s: failed: %v", r.Name, r.Err)
	}
}

func records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

// formatBytes writes n in IEC units, as the progress bar does.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// barReporter draws one progressbar line per active download below the
// lines of finished ones, redrawing them in place with ANSI cursor
// movement. progressbar draws a single bar on the current line, so each
// bar renders to a string and the reporter owns the terminal.
type barReporter struct {
	mu       sync.Mutex
	w        io.Writer
	bars     map[string]*progressbar.ProgressBar
	order    []string // active downloads, in the order they began
	drawn    int      // bar lines on screen, above the cursor
	lastDraw time.Time
}

// redrawEvery limits redraws: a terminal need not see every 32 KiB read.
const redrawEvery = 100 * time.Millisecond

func (b *barReporter) begin(name string, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if size <= 0 {
		size = -1 // progressbar's "unknown length"
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(io.Discard),
		progressbar.OptionSetDescription(fmt.Sprintf("%-10s", name)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(20),
		// A spinner change interval starts a goroutine per bar that
		// nothing stops; redraws here follow the bytes instead.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	_ = bar.RenderBlank() // renders to io.Discard and the bar's String
	if _, ok := b.bars[name]; !ok {
		b.order = append(b.order, name)
	}
	b.bars[name] = bar
	b.redraw(nil)
}

func (b *barReporter) add(name string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bar, ok := b.bars[name]
	if !ok {
		return
	}
	// Add64 errors when a server sends more than it announced; the
	// download checks sizes itself.
	_ = bar.Add64(n)
	// The last bytes are drawn whatever the rate: the bar then stays at
	// 100% while the records are checked and unpacked.
	if bar.IsFinished() || time.Since(b.lastDraw) >= redrawEvery {
		b.redraw(nil)
	}
}

func (b *barReporter) retry(name string, attempt, attempts int, wait time.Duration, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remove(name)
	b.redraw([]string{retryLine(name, attempt, attempts, wait, err)})
}

func (b *barReporter) done(r FileResult) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remove(r.Name)
	b.redraw([]string{resultLine(r)})
}

func (b *barReporter) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.order = nil
	b.redraw(nil)
}

func (b *barReporter) remove(name string) {
	delete(b.bars, name)
	b.order = slices.DeleteFunc(b.order, func(s string) bool { return s == name })
}

// redraw erases the bars, prints lines above them for good, and draws the
// bars again.
func (b *barReporter) redraw(lines []string) {
	var sb strings.Builder
	if b.drawn > 0 {
		// Up to the first bar line, then clear to the end of the screen.
		fmt.Fprintf(&sb, "\033[%dA\r\033[J", b.drawn)
	}
	for _, l := range lines {
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	for _, name := range b.order {
		sb.WriteString(strings.TrimLeft(b.bars[name].String(), "\r"))
		sb.WriteByte('\n')
	}
	b.drawn = len(b.order)
	b.lastDraw = time.Now()
	_, _ = io.WriteString(b.w, sb.String())
}
