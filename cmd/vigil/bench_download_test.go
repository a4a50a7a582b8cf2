//go:build linux

package main

import (
	"crypto/rand"
	"os"
	"testing"
	"time"
)

// benchBinaryPad makes the served binary node-sized: the fake app with incompressible bytes
// appended (an ELF runs unchanged with trailing data).
const benchBinaryPad = 40 << 20

// BenchmarkDownloadPickup measures halt → new binary running (upgrade-info.json renamed into
// data/ → v2 reports itself on a unix datagram socket) when the ~44 MB binary was prefetched from
// the node's plan before the halt, and when it is downloaded at the halt, from the same local
// server, with a sha256 checksum. No backup. Each sample uses a fresh home and a fresh vigil; at
// least 10 samples per case whatever b.N is, so run it as
//
//	go test -run '^$' -bench DownloadPickup -benchtime=1x ./cmd/vigil
//
// p50/p90 are reported in ms; ns/op is the mean.
func BenchmarkDownloadPickup(b *testing.B) {
	big := readFakeBin(b)
	pad := make([]byte, benchBinaryPad)
	rand.Read(pad)
	big = append(big, pad...)
	s := newDLServer(b)
	s.put("/app", big)
	info := binInfo(s.URL+"/app", big)
	s.schedule("v2", 100, info)
	for _, prefetch := range []bool{true, false} {
		name := "at-halt"
		if prefetch {
			name = "prefetched"
		}
		b.Run(name, func(b *testing.B) {
			b.StopTimer()
			n := max(b.N, 10)
			samples := make([]time.Duration, 0, n)
			for range n {
				samples = append(samples, downloadPickupOnce(b, s, info, big, prefetch))
			}
			reportLatencies(b, samples)
			b.ReportMetric(float64(len(big))/(1<<20), "bin-MiB")
		})
	}
}

func downloadPickupOnce(b *testing.B, s *dlServer, info string, big []byte, prefetch bool) time.Duration {
	b.Helper()
	h := newHome(b, nil)
	must(b, os.RemoveAll(h.root("upgrades", "v2")))
	sock, conn := readySocket(b)
	prepared := stageInfo(b, h, info)

	env := []string{"UNSAFE_SKIP_BACKUP=true", "FAKEAPP_READY=" + sock, "DAEMON_ALLOW_DOWNLOAD_BINARIES=true"}
	if prefetch {
		env = append(env, "VIGIL_RPC_ADDRESS="+s.URL, "VIGIL_PREFETCH_INTERVAL=100ms")
	} else {
		env = append(env, "VIGIL_PREFETCH_INTERVAL=0")
	}
	v := h.start([]string{"run", "start"}, env...)
	readReady(b, v, conn, "genesis")
	if prefetch {
		v.waitMsg("prefetched the upgrade binary; the halt will only switch")
	}

	d := timedHalt(b, h, v, conn, prepared)
	v.stopWant(0)
	if st, err := os.Stat(h.root("upgrades", "v2", "bin", daemonName)); err != nil || st.Size() != int64(len(big)) {
		b.Fatalf("installed binary: %v (size %v), want %d bytes", err, st, len(big))
	}
	return d
}
