//go:build !linux

package prom

import "golang.org/x/sys/unix"

// ProcessCollector reports what getrusage and getrlimit give without /proc:
// CPU time and the descriptor and address-space limits.
func ProcessCollector() Collector {
	return CollectorFunc(func() ([]Family, error) {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
			return nil, err
		}
		cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
		fs := []Family{procFamily(procCPU, counterType, cpu)}
		var rl unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
			fs = append(fs, procFamily(procMaxFDs, gaugeType, float64(rl.Cur)))
		}
		if unix.Getrlimit(unix.RLIMIT_AS, &rl) == nil {
			fs = append(fs, procFamily(procMaxVsize, gaugeType, float64(rl.Cur)))
		}
		return fs, nil
	})
}
