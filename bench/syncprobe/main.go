//go:build linux

// Command syncprobe times what an acknowledgement of evident serve waits
// for at the least, with full-sync durability: a write appended to a file
// and its fdatasync, as the telemetry log commits a group (a 1000-span
// request of telemetrygen's takes about 32 KB in the log). The disk's own
// p99 of that is the floor of serve's acknowledgement p99, whatever serve
// does around it (docs/architecture.md, issue 11's p99 at ten clients).
//
//	go run ./bench/syncprobe [-dir DIR] [-size 32768] [-every 100ms] [-n 600]
//
// It writes and syncs n times, one write starting every -every (ten
// clients that each send a request a second make a commit about every
// 100 ms), to a new file in dir (default: the system's temporary
// directory; name one on the disk serve's data directory is on), removes
// the file, and prints the percentiles of the times.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "syncprobe:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("syncprobe", flag.ContinueOnError)
	dir := fs.String("dir", os.TempDir(), "directory on the disk to time")
	size := fs.Int("size", 32<<10, "bytes written before each sync")
	every := fs.Duration("every", 100*time.Millisecond, "time from one write's start to the next's")
	n := fs.Int("n", 600, "writes and syncs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size <= 0 || *n < 100 || *every < 0 {
		return errors.New("want -size > 0, -n >= 100 (a p99 needs a hundred) and -every >= 0")
	}
	f, err := os.CreateTemp(*dir, "syncprobe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, *size)
	for i := range buf {
		buf[i] = byte(i) // not a run of zeros a file system might treat apart
	}
	took := make([]time.Duration, 0, *n)
	next := time.Now()
	for range *n {
		time.Sleep(time.Until(next))
		next = next.Add(*every)
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	at := func(q float64) time.Duration { return took[int(q*float64(len(took)-1))] }
	fmt.Fprintf(out, "write of %d bytes and fdatasync, %d times %v apart, in %s: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		*size, *n, *every, *dir, ms(at(.5)), ms(at(.9)), ms(at(.99)), ms(took[len(took)-1]))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
