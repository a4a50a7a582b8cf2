//go:build linux

package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPickup measures upgrade pickup: upgrade-info.json renamed into data/ → the v2 binary
// running (it reports itself on a unix datagram socket). No backup. Each sample uses a fresh home
// and a fresh vigil; setup is outside the timer. At least 20 samples are taken whatever b.N is,
// so run it as
//
//	go test -run '^$' -bench Pickup -benchtime=1x ./cmd/vigil
//
// (with a time-based -benchtime the framework keeps growing b.N because the timed part is tiny).
// p50/p90 are reported in ms; ns/op is the mean. Before each rename the benchmark sleeps a random
// 0–300ms (untimed) so the poll sub-benchmark does not always hit the same ticker phase. VIGIL_BENCH_POLL_INTERVAL overrides the poll
// sub-benchmark's DAEMON_POLL_INTERVAL (default: vigil's own 300ms).
//
// The "floor" sub-benchmark runs testdata/floor instead of vigil: the least a compatible
// supervisor must do (fsnotify, read the file, SIGTERM and reap, pre-upgrade, rename, exec),
// the yardstick of the pickup budget (≤ 1.15× the floor at p50). The sub-benchmarks interleave
// their samples (floor, event, poll, floor, …) so that a noisy moment of a shared machine hits
// all of them alike.
func BenchmarkPickup(b *testing.B) {
	pollEnv := []string{"VIGIL_WATCH_MODE=poll"}
	if iv := os.Getenv("VIGIL_BENCH_POLL_INTERVAL"); iv != "" {
		pollEnv = append(pollEnv, "DAEMON_POLL_INTERVAL="+iv)
	}
	floor := buildFloor(b)
	modes := []struct {
		name string
		argv []string
		env  []string
	}{{"floor", []string{floor}, nil}, {"event", []string{vigilBin, "run"}, nil}, {"poll", []string{vigilBin, "run"}, pollEnv}}
	n := max(b.N, 20)
	samples := make([][]time.Duration, len(modes))
	for range n {
		for i, m := range modes {
			samples[i] = append(samples[i], pickupOnce(b, m.argv, m.env))
		}
	}
	for i, m := range modes {
		b.Run(m.name, func(b *testing.B) { reportLatencies(b, samples[i]) })
	}
}

// buildFloor builds testdata/floor next to the test binaries.
func buildFloor(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(filepath.Dir(vigilBin), "floor")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vigilhq/vigil/testdata/floor").CombinedOutput(); err != nil {
		b.Fatalf("go build testdata/floor: %v\n%s", err, out)
	}
	return bin
}

// reportLatencies reports the median, the 90th percentile and the mean of
// samples (the benchmarks sample internally, so they run with -benchtime 1x).
func reportLatencies(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(samples[len(samples)/2]), "p50-ms")
	b.ReportMetric(ms(samples[(len(samples)*9)/10]), "p90-ms")
	b.ReportMetric(float64(sum)/float64(len(samples)), "ns/op")
}

// pickupOnce times one pickup by the supervisor argv (vigil run, or the floor).
func pickupOnce(b *testing.B, argv, env []string) time.Duration {
	b.Helper()
	h := newHome(b, nil) // quiet genesis and v2
	sock, conn := readySocket(b)
	prepared := stageInfo(b, h, "")

	extra := append([]string{"UNSAFE_SKIP_BACKUP=true", "FAKEAPP_READY=" + sock}, env...)
	v := h.startArgv(append(slices.Clone(argv), "start"), extra...)
	readReady(b, v, conn, "genesis")
	// The rename would otherwise always land at the same phase of a poller's ticker (just after
	// start), measuring a full interval every time; a random delay spreads it like a real halt.
	time.Sleep(rand.N(300 * time.Millisecond))

	d := timedHalt(b, h, v, conn, prepared)
	v.stopWant(0)
	return d
}

// readySocket is where the fake node reports it is up (FAKEAPP_READY). The
// folder name is short: sun_path is 108 bytes.
func readySocket(b *testing.B) (string, *net.UnixConn) {
	b.Helper()
	dir, err := os.MkdirTemp("", "vr")
	must(b, err)
	b.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	must(b, err)
	b.Cleanup(func() { conn.Close() })
	return sock, conn
}

// stageInfo writes the upgrade-info.json for v2 at height 100 beside data/
// (same filesystem), for timedHalt to rename into place.
func stageInfo(b *testing.B, h *nodeHome, info string) string {
	prepared := h.path("prepared-upgrade-info.json")
	must(b, os.WriteFile(prepared, []byte(infoJSON("v2", 100, info)), 0o644))
	return prepared
}

// timedHalt plays the halt (prepared renamed into data/) with the benchmark
// timer running, and returns the time until v2 reports it is up.
func timedHalt(b *testing.B, h *nodeHome, v *vigilProc, conn *net.UnixConn, prepared string) time.Duration {
	b.Helper()
	b.StartTimer()
	t0 := time.Now()
	must(b, os.Rename(prepared, h.path("data", "upgrade-info.json")))
	readReady(b, v, conn, "v2")
	d := time.Since(t0)
	b.StopTimer()
	return d
}

func readReady(b *testing.B, v *vigilProc, conn *net.UnixConn, version string) {
	b.Helper()
	must(b, conn.SetReadDeadline(time.Now().Add(waitTimeout)))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		b.Fatalf("waiting for %s ready: %v", version, err)
	}
	if f := strings.Fields(string(buf[:n])); len(f) != 2 || f[0] != version {
		b.Fatalf("ready datagram %q, want %q <pid>", buf[:n], version)
	}
}

// BenchmarkIdle reports what an idle vigil costs: context switches over 10 s of a quiet node
// (summed over all of vigil's threads), resident memory, and the binary size.
func BenchmarkIdle(b *testing.B) {
	for range b.N {
		h := newHome(b, nil)
		v := h.start([]string{"run", "start"}, "UNSAFE_SKIP_BACKUP=true")
		v.waitLog("genesis start start")
		time.Sleep(time.Second) // let start-up settle
		ctxsw, rss := idleCost(b, v)
		v.stopWant(0)
		st, err := os.Stat(vigilBin)
		must(b, err)
		b.ReportMetric(float64(ctxsw), "ctxsw/10s")
		b.ReportMetric(float64(rss)/1024, "RSS-MiB")
		b.ReportMetric(float64(st.Size())/(1<<20), "bin-MiB")
	}
}

// idleCost measures vigil over 10 s of idling: its context switches (summed over all its
// threads) and, at the end, its resident memory in kB.
func idleCost(b *testing.B, v *vigilProc) (ctxsw, rssKB int64) {
	b.Helper()
	pid := v.cmd.Process.Pid
	before := ctxSwitches(b, pid)
	time.Sleep(10 * time.Second)
	after := ctxSwitches(b, pid)
	return after - before, statusField(b, fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
}

func ctxSwitches(b *testing.B, pid int) int64 {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	must(b, err)
	if len(tasks) == 0 {
		b.Fatalf("no tasks for pid %d", pid)
	}
	var sum int64
	for _, p := range tasks {
		sum += statusField(b, p, "voluntary_ctxt_switches") + statusField(b, p, "nonvoluntary_ctxt_switches")
	}
	return sum
}

// statusField reads one numeric field of a /proc status file (the first number after the colon).
func statusField(b *testing.B, path, key string) int64 {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) || err == syscall.ESRCH {
			return 0 // a thread that went away
		}
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		must(b, err)
		return n
	}
	b.Fatalf("%s: no %s", path, key)
	return 0
}
