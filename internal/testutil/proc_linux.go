package testutil

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// ProcStat returns the fields of /proc/<pid>/stat that follow the command
// name (which is in parentheses and may hold spaces): [0] is the state, [1]
// the parent pid, [19] the start time (fields 3, 4 and 22 of proc(5)). ok is
// false when the process is gone.
func ProcStat(pid int) (fields []string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(string(b[i+1:]))
	return f, len(f) > 0
}

// IsZombie reports whether pid is gone or a zombie waiting to be reaped.
func IsZombie(pid int) bool {
	f, ok := ProcStat(pid)
	return !ok || f[0] == "Z"
}

// PIDs lists the processes in /proc, this test process included.
func PIDs() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
