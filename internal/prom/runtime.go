package prom

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// GoCollector writes what client_golang's default Go collector wrote: the
// go_memstats_* gauges and counters (from runtime/metrics, as it computed
// them), go_gc_duration_seconds, go_goroutines, go_threads, go_info and the
// GOGC, GOMEMLIMIT and GOMAXPROCS settings. Values are read at scrape time.
func GoCollector() Collector {
	var mu sync.Mutex // the sample buffer is reused across scrapes
	samples := make([]metrics.Sample, len(rmNames))
	for i, n := range rmNames {
		samples[i].Name = n
	}
	return CollectorFunc(func() ([]Family, error) {
		mu.Lock()
		metrics.Read(samples)
		rm := map[string]float64{}
		for _, s := range samples {
			switch s.Value.Kind() {
			case metrics.KindUint64:
				rm[s.Name] = float64(s.Value.Uint64())
			case metrics.KindFloat64:
				rm[s.Name] = s.Value.Float64()
			}
		}
		mu.Unlock()
		one := func(name, help, typ string, v float64, labels ...Label) Family {
			return Family{name, help, typ, []Sample{{Labels: labels, Value: v}}}
		}
		threads, _ := runtime.ThreadCreateProfile(nil)
		var gc debug.GCStats
		gc.PauseQuantiles = make([]time.Duration, 5)
		debug.ReadGCStats(&gc)
		sum := Family{Name: "go_gc_duration_seconds",
			Help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", Type: summaryType}
		for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
			sum.Samples = append(sum.Samples, Sample{Labels: []Label{{"quantile", q}}, Value: gc.PauseQuantiles[i].Seconds()})
		}
		sum.Samples = append(sum.Samples,
			Sample{Suffix: "_sum", Value: gc.PauseTotal.Seconds()},
			Sample{Suffix: "_count", Value: float64(gc.NumGC)})
		fs := []Family{
			one("go_goroutines", "Number of goroutines that currently exist.", gaugeType, float64(runtime.NumGoroutine())),
			one("go_threads", "Number of OS threads created.", gaugeType, float64(threads)),
			sum,
			one("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", gaugeType, float64(gc.LastGC.UnixNano())/1e9),
			one("go_info", "Information about the Go environment.", gaugeType, 1, Label{"version", runtime.Version()}),
			one("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", gaugeType, rm["/gc/gogc:percent"]),
			one("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", gaugeType, rm["/gc/gomemlimit:bytes"]),
			one("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", gaugeType, rm["/sched/gomaxprocs:threads"]),
		}
		for _, m := range memStats {
			fs = append(fs, one("go_memstats_"+m.name, m.help, m.typ, m.eval(rm)))
		}
		return fs, nil
	})
}

var rmNames = []string{
	"/gc/gogc:percent", "/gc/gomemlimit:bytes", "/sched/gomaxprocs:threads",
	"/gc/heap/tiny/allocs:objects", "/gc/heap/allocs:objects", "/gc/heap/frees:objects",
	"/gc/heap/allocs:bytes", "/gc/heap/objects:objects", "/gc/heap/goal:bytes",
	"/memory/classes/total:bytes", "/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/released:bytes", "/memory/classes/heap/free:bytes", "/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes", "/memory/classes/metadata/mspan/inuse:bytes", "/memory/classes/metadata/mspan/free:bytes",
	"/memory/classes/metadata/mcache/inuse:bytes", "/memory/classes/metadata/mcache/free:bytes",
	"/memory/classes/profiling/buckets:bytes", "/memory/classes/metadata/other:bytes", "/memory/classes/other:bytes",
}

type rmValues = map[string]float64

func rmSum(names ...string) func(rmValues) float64 {
	return func(rm rmValues) float64 {
		var s float64
		for _, n := range names {
			s += rm[n]
		}
		return s
	}
}

// memStats are client_golang's MemStats-compatible metrics with the HELP
// texts and the runtime/metrics sums it used (memStatsFromRM).
var memStats = []struct {
	name, help, typ string
	eval            func(rmValues) float64
}{
	{"alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", gaugeType,
		rmSum("/memory/classes/heap/objects:bytes")},
	{"alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", counterType,
		rmSum("/gc/heap/allocs:bytes")},
	{"sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", gaugeType,
		rmSum("/memory/classes/total:bytes")},
	{"mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", counterType,
		rmSum("/gc/heap/allocs:objects", "/gc/heap/tiny/allocs:objects")},
	{"frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", counterType,
		rmSum("/gc/heap/frees:objects", "/gc/heap/tiny/allocs:objects")},
	{"heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", gaugeType,
		rmSum("/memory/classes/heap/objects:bytes")},
	{"heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gaugeType,
		rmSum("/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes", "/memory/classes/heap/released:bytes", "/memory/classes/heap/free:bytes")},
	{"heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gaugeType,
		rmSum("/memory/classes/heap/released:bytes", "/memory/classes/heap/free:bytes")},
	{"heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", gaugeType,
		rmSum("/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes")},
	{"heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", gaugeType,
		rmSum("/memory/classes/heap/released:bytes")},
	{"heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", gaugeType,
		rmSum("/gc/heap/objects:objects")},
	{"stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", gaugeType,
		rmSum("/memory/classes/heap/stacks:bytes")},
	{"stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", gaugeType,
		rmSum("/memory/classes/heap/stacks:bytes", "/memory/classes/os-stacks:bytes")},
	{"mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", gaugeType,
		rmSum("/memory/classes/metadata/mspan/inuse:bytes")},
	{"mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", gaugeType,
		rmSum("/memory/classes/metadata/mspan/inuse:bytes", "/memory/classes/metadata/mspan/free:bytes")},
	{"mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", gaugeType,
		rmSum("/memory/classes/metadata/mcache/inuse:bytes")},
	{"mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", gaugeType,
		rmSum("/memory/classes/metadata/mcache/inuse:bytes", "/memory/classes/metadata/mcache/free:bytes")},
	{"buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", gaugeType,
		rmSum("/memory/classes/profiling/buckets:bytes")},
	{"gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", gaugeType,
		rmSum("/memory/classes/metadata/other:bytes")},
	{"other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", gaugeType,
		rmSum("/memory/classes/other:bytes")},
	{"next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", gaugeType,
		rmSum("/gc/heap/goal:bytes")},
}
