//go:build linux

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procInfo is what EndStray needs from /proc/<pid>/stat.
type procInfo struct {
	state   byte // R, S, D, Z, X, …
	pgrp    int
	sid     int
	threads int
	start   uint64
}

// gone: dead, its files closed. A multi-threaded process (a Go node) whose
// leader thread exited first shows the leader as a zombie while its other
// threads still run and still hold the files (a database's LOCK): it is gone
// only once the leader is the last thread counted.
func (s procInfo) gone() bool { return (s.state == 'Z' || s.state == 'X') && s.threads <= 1 }

// readStat parses /proc/<pid>/stat. A missing process gives an error that
// wraps fs.ErrNotExist.
func readStat(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself; the fields after the last ')' are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("process: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field N is f[N-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procInfo{}, fmt.Errorf("process: /proc/%d/stat: %d fields", pid, len(f))
	}
	var s procInfo
	s.state = f[0][0]
	if s.pgrp, err = strconv.Atoi(f[5-3]); err == nil {
		if s.sid, err = strconv.Atoi(f[6-3]); err == nil {
			if s.threads, err = strconv.Atoi(f[20-3]); err == nil {
				s.start, err = strconv.ParseUint(f[22-3], 10, 64)
			}
		}
	}
	if err != nil {
		return procInfo{}, fmt.Errorf("process: /proc/%d/stat: %w", pid, err)
	}
	return s, nil
}

var boot struct {
	once sync.Once
	id   string
}

func bootID() string {
	boot.once.Do(func() {
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err == nil {
			boot.id = strings.TrimSpace(string(b))
		}
	})
	return boot.id
}

// identOf reads the child's identity. The waiter calls it before the child
// can be reaped, so the pid is still the child's.
func identOf(pid int, ownGroup bool) Ident {
	st, err := readStat(pid)
	if err != nil {
		return Ident{}
	}
	id := Ident{Pid: pid, Start: st.start, Sid: st.sid, Boot: bootID()}
	if ownGroup {
		id.Pgid = st.pgrp
	}
	return id
}

// member is one live process of a stray.
type member struct {
	pid   int
	start uint64
}

// find lists the live processes of id: the recorded process if it is still
// the same one, and, with a group, every live member of that group that is
// in the recorded session and started no earlier than the leader. notOurs
// reports that the pid runs another process now: then nothing is ours,
// because the kernel does not hand out a pid while it is still some group's
// id, so the recorded group is gone too.
func (id Ident) find() (ms []member, notOurs bool, err error) {
	if id.Pid <= 0 {
		return nil, false, nil
	}
	if id.Boot != "" && id.Boot != bootID() {
		return nil, false, nil // rebooted since: nothing of it survived
	}
	leader, err := readStat(id.Pid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, false, err
	case leader.start != id.Start:
		return nil, true, nil
	case !leader.gone():
		ms = append(ms, member{id.Pid, id.Start})
	}
	if id.Pgid <= 0 {
		return ms, false, nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false, fmt.Errorf("process: list /proc: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == id.Pid {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.gone() || st.pgrp != id.Pgid || st.sid != id.Sid || st.start < id.Start {
			continue // gone meanwhile, or not of this group
		}
		ms = append(ms, member{pid, st.start})
	}
	return ms, false, nil
}

// signal sends sig to m through a pidfd: the pidfd is opened first and the
// start time checked after, so the signal reaches m or nobody, never a
// process that got its pid in between.
func (m member) signal(sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(m.pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("process: pidfd of %d: %w", m.pid, err)
	}
	defer unix.Close(fd)
	if st, err := readStat(m.pid); err != nil || st.start != m.start {
		return nil // gone, or the pid is someone else's now
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("process: signal %v to %d: %w", sig, m.pid, err)
	}
	return nil
}

// EndStray stops a process that an earlier vigil started and could not stop
// (it was killed), together with its process group when it led one: SIGTERM
// to each live process of it, SIGKILL to whatever is left after grace (or as
// soon as ctx is done), and it returns once all of them are gone. A process
// whose start time differs from id's is not ours and is never signalled.
// Members are signalled one by one through pidfds rather than with
// kill(-pgid): the group number is not pinned by anything we hold.
// A process forked into the group after the SIGTERM gets the SIGKILL.
// After SIGKILL it waits without a bound, like Child.Stop.
func EndStray(ctx context.Context, id Ident, grace time.Duration) (StrayResult, error) {
	var res StrayResult
	ms, notOurs, err := id.find()
	if err != nil || notOurs || len(ms) == 0 {
		res.NotOurs = notOurs
		return res, err
	}
	for _, m := range ms {
		res.Pids = append(res.Pids, m.pid)
	}
	send := func(sig syscall.Signal) error {
		var errs []error
		for _, m := range ms {
			errs = append(errs, m.signal(sig))
		}
		return errors.Join(errs...)
	}
	if err := send(syscall.SIGTERM); err != nil {
		return res, err
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(strayPoll)
	defer tick.Stop()
	killNow := func() error {
		res.Killed = true
		deadline.Stop()
		ctx = context.Background() // a nil Done channel from here on
		return send(syscall.SIGKILL)
	}
	for {
		select {
		case <-deadline.C:
			if err := killNow(); err != nil {
				return res, err
			}
		case <-ctx.Done():
			if err := killNow(); err != nil {
				return res, err
			}
		case <-tick.C:
		}
		if ms, _, err = id.find(); err != nil {
			return res, err
		}
		if len(ms) == 0 {
			return res, nil
		}
		if res.Killed {
			// Anything forked since the SIGKILL round is killed too.
			if err := send(syscall.SIGKILL); err != nil {
				return res, err
			}
		}
	}
}
