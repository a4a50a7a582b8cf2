//go:build linux

package process

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// MarkedOrphans scans /proc once for the processes that a vigil of home (the
// absolute $DAEMON_HOME) left behind when it was killed, by the SupervisorEnv
// mark they inherited: the ones no record names (a hook's child that called
// setsid and so left the group the record names; a hook forked but not yet
// recorded). It finds each process OrphanOf would call an orphan: the mark
// names home (or, naming no home, the executable lies under home's
// cosmovisor/genesis/ or upgrades/) and a vigil that is gone. This process
// is skipped, and so is a member of the process group of another one found
// (in its session, started no earlier): EndStray on that leader reaches it,
// and it gets each signal once. A process whose environment cannot be read
// (gone meanwhile, another user's without the right to read it) is skipped.
//
// The environment is read whole (the mark's place in it is not fixed: a
// shell passes its variables on in its own order) into one reused buffer;
// only a marked process costs more reads. A process reads with an empty
// environment for a moment inside its execve (see readEnviron); of those,
// only user processes (an executable to read: not a kernel thread, not a
// zombie) are read again, all together, every 2 ms for up to 100 ms while
// any is still empty. A process exec'd by a dead vigil's descendant right
// during the scan is thus seen; the price is 100 ms when some process runs
// with a truly empty environment (env -i).
func MarkedOrphans(home string) ([]Orphan, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("process: list /proc: %w", err)
	}
	var (
		found []foundOrphan
		empty []int
		errs  []error
		buf   = make([]byte, 0, 32<<10)
	)
	look := func(pid int, env []byte) {
		o, ok, err := markedOrphan(pid, env, home)
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok:
			found = append(found, o)
		}
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if buf, err = readEnvironInto(pid, buf); err != nil {
			continue // gone, or not ours to read
		}
		if len(buf) > 0 {
			look(pid, buf)
		} else if _, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil {
			empty = append(empty, pid)
		}
	}
	for try := 0; len(empty) > 0 && try < 50; try++ {
		time.Sleep(2 * time.Millisecond)
		still := empty[:0]
		for _, pid := range empty {
			if buf, err = readEnvironInto(pid, buf); err != nil {
				continue
			}
			if len(buf) > 0 {
				look(pid, buf)
			} else {
				still = append(still, pid)
			}
		}
		empty = still
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []Orphan
	for _, o := range found {
		if !o.inGroupOf(found) {
			out = append(out, o.Orphan)
		}
	}
	return out, nil
}

type foundOrphan struct {
	Orphan
	pgrp int
}

// inGroupOf reports whether o is a member of the group another of found
// leads: EndStray on that leader ends it.
func (o foundOrphan) inGroupOf(found []foundOrphan) bool {
	for _, l := range found {
		if l.Pid != o.Pid && l.Pgid != 0 && l.Pgid == o.pgrp && l.Sid == o.Sid && l.Start <= o.Start {
			return true
		}
	}
	return false
}

// markedOrphan decides on pid, whose environment env is: ok when it is an
// orphan of home's vigil. A process that is gone or changes meanwhile, or
// whose mark is malformed (nothing says it is ours), is not one.
func markedOrphan(pid int, env []byte, home string) (o foundOrphan, ok bool, err error) {
	if !bytes.Contains(env, []byte(SupervisorEnv+"=")) {
		return o, false, nil // most processes: no need to look further
	}
	v, ok := markIn(env)
	if !ok {
		return o, false, nil
	}
	m, err := parseMark(v)
	if err != nil {
		return o, false, nil
	}
	st, err := readStat(pid)
	if err != nil || st.gone() {
		return o, false, nil
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return o, false, nil // gone, or a zombie
	}
	left, _, err := m.leftBehind(home, exe)
	if err != nil {
		return o, false, fmt.Errorf("process: %s of %d: %w", SupervisorEnv, pid, err)
	}
	if !left {
		return o, false, nil
	}
	// Read again: the environment and executable read above must be of the
	// process whose start time the Ident carries.
	if again, err := readStat(pid); err != nil || again.start != st.start {
		return o, false, nil
	}
	return foundOrphan{Orphan{st.ident(pid), exe, v}, st.pgrp}, true, nil
}

// readEnvironInto reads /proc/<pid>/environ into buf (reused: its content is
// replaced) and returns it.
func readEnvironInto(pid int, buf []byte) ([]byte, error) {
	buf = buf[:0]
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return buf, err
	}
	defer f.Close()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
