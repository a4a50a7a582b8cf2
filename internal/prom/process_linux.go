package prom

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// userHZ is the kernel's clock tick for /proc times; procfs assumes 100 too.
const userHZ = 100

// ProcessCollector reads /proc/self at scrape time, as client_golang's
// procfs-based collector did; an unreadable file is a gathering error.
func ProcessCollector() Collector {
	return CollectorFunc(func() ([]Family, error) {
		var fs []Family
		var errs []error
		if st, err := os.ReadFile("/proc/self/stat"); err != nil {
			errs = append(errs, err)
		} else if f, err := statFamilies(st); err != nil {
			errs = append(errs, err)
		} else {
			fs = append(fs, f...)
		}
		if d, err := os.ReadDir("/proc/self/fd"); err != nil {
			errs = append(errs, err)
		} else {
			fs = append(fs, procFamily(procOpenFDs, gaugeType, float64(len(d))))
		}
		if l, err := os.ReadFile("/proc/self/limits"); err != nil {
			errs = append(errs, err)
		} else {
			fs = append(fs, procFamily(procMaxFDs, gaugeType, limit(l, "Max open files")),
				procFamily(procMaxVsize, gaugeType, limit(l, "Max address space")))
		}
		if n, err := os.ReadFile("/proc/self/net/netstat"); err != nil {
			errs = append(errs, err)
		} else {
			in, out := ipExt(n)
			fs = append(fs, procFamily(procNetIn, counterType, in), procFamily(procNetOut, counterType, out))
		}
		return fs, errors.Join(errs...)
	})
}

// statFamilies parses /proc/self/stat: the fields after the command name,
// which may itself hold spaces and parentheses.
func statFamilies(st []byte) ([]Family, error) {
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return nil, errors.New("/proc/self/stat: no command end")
	}
	f := strings.Fields(string(st[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
	if len(f) < 22 {
		return nil, errors.New("/proc/self/stat: too few fields")
	}
	num := func(field int) float64 { v, _ := strconv.ParseUint(f[field-3], 10, 64); return float64(v) }
	boot, err := bootTime()
	if err != nil {
		return nil, err
	}
	return []Family{
		procFamily(procCPU, counterType, (num(14)+num(15))/userHZ),
		procFamily(procVsize, gaugeType, num(23)),
		procFamily(procRSS, gaugeType, num(24)*float64(os.Getpagesize())),
		procFamily(procStart, gaugeType, boot+num(22)/userHZ),
	}, nil
}

func bootTime() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return float64(n), err
		}
	}
	return 0, fmt.Errorf("/proc/stat: no btime")
}

// limit is the soft limit of the named row of /proc/self/limits;
// "unlimited" is the largest uint64, as procfs reads it.
func limit(b []byte, name string) float64 {
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, name); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			if f[0] == "unlimited" {
				return math.MaxUint64
			}
			v, _ := strconv.ParseUint(f[0], 10, 64)
			return float64(v)
		}
	}
	return 0
}

// ipExt returns InOctets and OutOctets from the IpExt lines of
// /proc/self/net/netstat (a header line of names, then one of values).
func ipExt(b []byte) (in, out float64) {
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "IpExt:") || !strings.HasPrefix(lines[i+1], "IpExt:") {
			continue
		}
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j := 1; j < len(names) && j < len(vals); j++ {
			v, _ := strconv.ParseFloat(vals[j], 64)
			switch names[j] {
			case "InOctets":
				in = v
			case "OutOctets":
				out = v
			}
		}
		return in, out
	}
	return 0, 0
}
