package watcher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkEventLatency measures pickup latency: from os.Rename of a new
// upgrade-info.json into place to the Change received by the consumer.
// poll-300ms is cosmovisor's default DAEMON_POLL_INTERVAL.
func BenchmarkEventLatency(b *testing.B) {
	cases := []struct {
		name     string
		poll     bool
		interval time.Duration
	}{
		{"fsnotify", false, 0},
		{"poll-10ms", true, 10 * time.Millisecond},
		{"poll-300ms", true, defaultPollInterval},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			dir := newDataDir(b)
			cfg := Config{Dir: dir, File: fileName, ForcePoll: bc.poll, PollInterval: bc.interval}
			ctx, cancel := context.WithCancel(context.Background())
			out := make(chan Change)
			done := make(chan error, 1)
			go func() { done <- Run(ctx, cfg, out) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			recv := func() {
				select {
				case <-out:
				case <-time.After(hang):
					b.Fatalf("no Change within %v", hang)
				}
			}
			recv() // ReasonStart

			path := filepath.Join(dir, fileName)
			tmp := filepath.Join(dir, ".upgrade-info.json.tmp")
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				content := fmt.Sprintf(`{"name":"v%d","height":%d}`, i, 1000+i)
				if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
					b.Fatal(err)
				}
				if bc.poll {
					// Without this the rename always lands just after a
					// tick (the previous Change came from one), and every
					// sample would be a full interval.
					time.Sleep(rand.N(bc.interval))
				}
				b.StartTimer()
				t0 := time.Now()
				if err := os.Rename(tmp, path); err != nil {
					b.Fatal(err)
				}
				recv()
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
			}
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.90), "p90-µs")
		})
	}
}
