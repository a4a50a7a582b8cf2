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
	id   string // "<pid>:<start>:<boot id>"
}

// supervisorMark is this vigil's SupervisorEnv value for home; "" when /proc
// cannot tell its start time.
func supervisorMark(home string) string {
	self.once.Do(func() {
		st, err := readStat(os.Getpid())
		if err == nil && bootID() != "" {
			self.id = fmt.Sprintf("%d:%d:%s", os.Getpid(), st.start, bootID())
		}
	})
	if self.id == "" {
		return ""
	}
	return self.id + ":" + home
}

// MarkEnv returns env (nil: this process's own environment, as Spec.Env
// means) with SupervisorEnv naming this process as the vigil of home (an
// absolute path), replacing any value it had. env itself is never modified.
// Without /proc it returns env unchanged.
func MarkEnv(env []string, home string) []string {
	mark := supervisorMark(home)
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

// OrphanOf decides whether pid is a process that a vigil of home (the
// absolute $DAEMON_HOME) started, and that outlived that vigil: its
// environment carries SupervisorEnv, the vigil it names is gone (no live
// process with that pid and start time, or it names another boot), and the
// mark names home, or, in the older form that names no home, its executable
// lies under home's cosmovisor/genesis/ or cosmovisor/upgrades/. Only such a
// process may be ended without a record (vigil.procs) naming it: a node an
// operator started by hand has no marker, the child of a live vigil is that
// vigil's, and that of another home's vigil is that home's. The Ident
// returned (with the group when the process leads one, as a node started
// with Spec.OwnGroup does) is for EndStray, whose start-time check covers a
// pid reused after this decision. reason tells why it is not an orphan, for
// the log.
func OrphanOf(pid int, home string) (id Ident, orphan bool, reason string, err error) {
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
	v, ok := markIn(env)
	if !ok {
		return Ident{}, false, "not started by vigil (no " + SupervisorEnv + " in its environment)", nil
	}
	m, err := parseMark(v)
	if err != nil {
		return Ident{}, false, "", fmt.Errorf("process: %s of %d: %w", SupervisorEnv, pid, err)
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return Ident{}, false, "", fmt.Errorf("process: executable of %d: %w", pid, err)
	}
	if left, why, err := m.leftBehind(home, exe); err != nil || !left {
		if err != nil {
			return Ident{}, false, "", fmt.Errorf("process: %s of %d: %w", SupervisorEnv, pid, err)
		}
		return Ident{}, false, why, nil
	}
	// Read again: the environment and executable read above must be of the
	// process whose start time the Ident carries.
	if again, err := readStat(pid); err != nil || again.start != st.start {
		return Ident{}, false, "gone", nil
	}
	return st.ident(pid), true, "", nil
}

// ident is the Ident of pid, whose stat st is, with its group when it leads
// one.
func (st procInfo) ident(pid int) Ident {
	id := Ident{Pid: pid, Start: st.start, Sid: st.sid, Boot: bootID()}
	if st.pgrp == pid {
		id.Pgid = pid
	}
	return id
}

// markIn returns the SupervisorEnv value in env, a /proc/<pid>/environ.
func markIn(env []byte) (string, bool) {
	mark, ok := "", false
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if v, found := bytes.CutPrefix(kv, []byte(SupervisorEnv+"=")); found {
			mark, ok = string(v), true // the last one counts, as for a shell
		}
	}
	return mark, ok
}

// mark is a parsed SupervisorEnv value.
type mark struct {
	raw   string
	pid   int
	start uint64
	boot  string
	home  string // "" in the older three-field form, which names no home
}

func parseMark(v string) (mark, error) {
	f := strings.SplitN(v, ":", 4) // the home, last, may hold ':' itself
	if len(f) < 3 {
		return mark{}, fmt.Errorf("malformed %q", v)
	}
	m := mark{raw: v, boot: f[2]}
	var err error
	if m.pid, err = strconv.Atoi(f[0]); err != nil {
		return mark{}, fmt.Errorf("malformed pid in %q: %w", v, err)
	}
	if m.start, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return mark{}, fmt.Errorf("malformed start time in %q: %w", v, err)
	}
	if len(f) == 4 {
		if !filepath.IsAbs(f[3]) {
			return mark{}, fmt.Errorf("malformed home in %q: not absolute", v)
		}
		m.home = f[3]
	}
	return m, nil
}

// leftBehind decides whether a process carrying m, running exe, is one a
// vigil of home left behind; why tells why not.
func (m mark) leftBehind(home, exe string) (left bool, why string, err error) {
	if m.home != "" && !sameDir(m.home, home) {
		return false, "its vigil is of another home (" + SupervisorEnv + "=" + m.raw + ")", nil
	}
	if alive, err := m.alive(); err != nil || alive {
		return false, "its vigil still runs (" + SupervisorEnv + "=" + m.raw + ")", err
	}
	root := filepath.Join(home, "cosmovisor")
	if m.home == "" && !underVersions(exe, root) {
		return false, "its executable " + exe + " is not under " + root + " (and its " + SupervisorEnv + " names no home)", nil
	}
	return true, "", nil
}

// sameDir reports whether a and b name the same directory: the same path, or
// the same inode reached another way (a symlink, a bind mount), as a home
// given another spelling to the next vigil is.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
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

// alive reports whether the vigil m names still runs.
func (m mark) alive() (bool, error) {
	if m.boot != bootID() {
		return false, nil // another boot: that vigil died with it
	}
	st, err := readStat(m.pid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return st.start == m.start && !st.gone(), nil
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
