//go:build linux

package process

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

var self struct {
	once sync.Once
	mark string
}

// supervisorMark is this vigil's SupervisorEnv value; "" when /proc cannot
// tell its start time.
func supervisorMark() string {
	self.once.Do(func() {
		st, err := readStat(os.Getpid())
		if err == nil && bootID() != "" {
			self.mark = fmt.Sprintf("%d:%d:%s", os.Getpid(), st.start, bootID())
		}
	})
	return self.mark
}

// MarkEnv returns env (nil: this process's own environment, as Spec.Env
// means) with SupervisorEnv naming this process, replacing any value it had.
// env itself is never modified. Without /proc it returns env unchanged.
func MarkEnv(env []string) []string {
	mark := supervisorMark()
	if mark == "" {
		return env
	}
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, SupervisorEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, SupervisorEnv+"="+mark)
}

// Holders lists the processes other than this one that have the file at path
// open, compared by device and inode (the same file under another path, a
// bind mount, counts). A process that exits or closes its descriptors during
// the scan may be missed or listed; one in another pid namespace is not
// seen. It walks every descriptor of every process: for the rare case of a
// held database LOCK, not for a hot path.
func Holders(path string) ([]Holder, error) {
	want, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("process: holders of %s: %w", path, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("process: list /proc: %w", err)
	}
	var out []Holder
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		fdDir := "/proc/" + e.Name() + "/fd"
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone meanwhile, or a kernel thread
		}
		for _, fd := range fds {
			// Stat follows the magic link to the open file itself, even
			// one deleted or reached through another path.
			st, err := os.Stat(fdDir + "/" + fd.Name())
			if err == nil && os.SameFile(st, want) {
				exe, _ := os.Readlink("/proc/" + e.Name() + "/exe")
				out = append(out, Holder{Pid: pid, Exe: exe})
				break
			}
		}
	}
	return out, nil
}

// OrphanOf decides whether pid is a process that a vigil of the home whose
// cosmovisor/ folder is root started, and that outlived that vigil: its
// environment carries SupervisorEnv, the vigil it names is gone (no live
// process with that pid and start time, or it names another boot), and its
// executable lies under root/genesis/ or root/upgrades/. Only such a process
// may be ended without a record (vigil.procs) naming it: a node an operator
// started by hand has no marker, and the child of a live vigil is that
// vigil's. The Ident returned (with the group when the process leads one, as
// a node started with Spec.OwnGroup does) is for EndStray, whose start-time
// check covers a pid reused after this decision. reason tells why it is not
// an orphan, for the log.
func OrphanOf(pid int, root string) (id Ident, orphan bool, reason string, err error) {
	st, err := readStat(pid)
	if errors.Is(err, fs.ErrNotExist) {
		return Ident{}, false, "gone", nil
	}
	if err != nil {
		return Ident{}, false, "", err
	}
	env, err := readEnviron(pid)
	if err != nil {
		return Ident{}, false, "", fmt.Errorf("process: environment of %d: %w", pid, err)
	}
	mark, ok := "", false
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if v, found := bytes.CutPrefix(kv, []byte(SupervisorEnv+"=")); found {
			mark, ok = string(v), true // the last one counts, as for getenv
		}
	}
	if !ok {
		return Ident{}, false, "not started by vigil (no " + SupervisorEnv + " in its environment)", nil
	}
	if alive, err := supervisorAlive(mark); err != nil || alive {
		if err != nil {
			return Ident{}, false, "", fmt.Errorf("process: %s of %d: %w", SupervisorEnv, pid, err)
		}
		return Ident{}, false, "its vigil still runs (" + SupervisorEnv + "=" + mark + ")", nil
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return Ident{}, false, "", fmt.Errorf("process: executable of %d: %w", pid, err)
	}
	if !underVersions(exe, root) {
		return Ident{}, false, "its executable " + exe + " is not under " + root, nil
	}
	// Read again: the environment and executable read above must be of the
	// process whose start time the Ident carries.
	if again, err := readStat(pid); err != nil || again.start != st.start {
		return Ident{}, false, "gone", nil
	}
	id = Ident{Pid: pid, Start: st.start, Sid: st.sid, Boot: bootID()}
	if st.pgrp == pid {
		id.Pgid = pid
	}
	return id, true, "", nil
}

// readEnviron reads /proc/<pid>/environ. Right after an execve the kernel
// shows it empty for a moment (the new image's stack, which holds it, is set
// up after the exec is already reported done to the parent), so an empty
// one is read again for a while before it is believed.
func readEnviron(pid int) ([]byte, error) {
	for try := 0; ; try++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil || len(b) > 0 || try == 50 {
			return b, err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// supervisorAlive reports whether the vigil a SupervisorEnv value names
// still runs.
func supervisorAlive(mark string) (bool, error) {
	f := strings.SplitN(mark, ":", 3)
	if len(f) != 3 {
		return false, fmt.Errorf("malformed %q", mark)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return false, fmt.Errorf("malformed pid in %q: %w", mark, err)
	}
	start, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return false, fmt.Errorf("malformed start time in %q: %w", mark, err)
	}
	if f[2] != bootID() {
		return false, nil // another boot: that vigil died with it
	}
	st, err := readStat(pid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return st.start == start && !st.gone(), nil
}

// underVersions reports whether exe (a /proc/<pid>/exe target: resolved, with
// " (deleted)" once the file was replaced, as an upgrade's reinstall does)
// lies under root/genesis/ or root/upgrades/, root taken as given and with
// its symlinks resolved.
func underVersions(exe, root string) bool {
	exe = strings.TrimSuffix(exe, " (deleted)")
	roots := []string{filepath.Clean(root)}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		roots = append(roots, r)
	}
	for _, r := range roots {
		for _, sub := range []string{"genesis", "upgrades"} {
			if strings.HasPrefix(exe, filepath.Join(r, sub)+"/") {
				return true
			}
		}
	}
	return false
}
