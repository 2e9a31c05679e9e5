// Command cpuprofile writes the CPU profile ../cpu.pb.gz with
// runtime/pprof: two handlers busy for a second, their samples labelled
// with the span_name and span_id labels the OpenTelemetry profiling
// integrations (otel-profiling-go) set. With -secret it writes
// ../cpu-secret.pb.gz, whose samples carry an api_key label too, which
// the redaction rules mask.
//
//	go run .; go run . -secret
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"log"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

func main() {
	secret := flag.Bool("secret", false, "label the samples with an api_key too")
	flag.Parse()
	name := "../cpu.pb.gz"
	if *secret {
		name = "../cpu-secret.pb.gz"
	}
	f, err := os.Create(name)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, h := range []struct{ name, id string }{{"GET /cart", "00f067aa0ba902b7"}, {"POST /pay", "53995c3f42cd8ad8"}} {
		labels := []string{"span_name", h.name, "span_id", h.id}
		if *secret {
			labels = append(labels, "api_key", "s3cr3t-label")
		}
		wg.Add(1)
		go pprof.Do(context.Background(), pprof.Labels(labels...), func(context.Context) {
			defer wg.Done()
			busy(time.Second)
		})
	}
	wg.Wait()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// busy hashes for d.
func busy(d time.Duration) {
	sum := sha256.Sum256(nil)
	for end := time.Now().Add(d); time.Now().Before(end); {
		sum = sha256.Sum256(sum[:])
	}
}
