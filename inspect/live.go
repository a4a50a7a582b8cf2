package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Alive reports whether pid is running and is the process that started at
// started (so a recycled pid does not count). Without /proc it trusts the pid.
func Alive(pid int, started time.Time) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	at, err := procStart(pid)
	if err != nil || started.IsZero() {
		return err == nil || errors.Is(err, fs.ErrNotExist) && !procMounted()
	}
	d := at.Sub(started)
	// /proc's start time has a 1 s (btime) and 10 ms (ticks) resolution, and
	// the recorded time is taken just after the start.
	return d > -5*time.Second && d < 5*time.Second
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// procStart reads a process's start time from /proc/<pid>/stat (field 22, in
// clock ticks since boot) and /proc/stat (btime).
func procStart(pid int) (time.Time, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, err
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces and parens
	if i < 0 {
		return time.Time{}, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return time.Time{}, errors.New("bad /proc stat")
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22; f[0] is field 3
	if err != nil {
		return time.Time{}, err
	}
	btime, err := bootTime()
	if err != nil {
		return time.Time{}, err
	}
	const userHZ = 100 // USER_HZ: fixed at 100 in the Linux ABI
	return btime.Add(time.Duration(ticks) * time.Second / userHZ), nil
}

// bootTime is /proc/stat's btime.
func bootTime() (time.Time, error) {
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for l := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			btime, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, err
			}
			return time.Unix(btime, 0), nil
		}
	}
	return time.Time{}, errors.New("no btime in /proc/stat")
}
