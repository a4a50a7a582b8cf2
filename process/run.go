//go:build unix

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
)

// MaxOutput is how much of a command's output Output keeps: the last bytes,
// where a failing command says why.
const MaxOutput = 64 << 10

// Run starts spec and waits until the child has exited and been reaped. If ctx
// ends first, the child is stopped like Child.Stop with grace (SIGTERM, then
// SIGKILL after grace; to the group with Spec.OwnGroup), and the returned error
// wraps ctx's cause; the Exit is still the child's. Use it instead of os/exec
// for every short command, so the orphan reaper knows the child is ours.
func Run(ctx context.Context, spec Spec, grace time.Duration) (Exit, error) {
	c, err := Start(spec)
	if err != nil {
		return Exit{}, err
	}
	return c.finish(ctx, grace)
}

func (c *Child) finish(ctx context.Context, grace time.Duration) (Exit, error) {
	select {
	case <-c.Done():
		return c.Exit(), nil
	case <-ctx.Done():
	}
	// The child may have exited at the same moment; Stop then just reports it.
	res := c.Stop(context.Background(), grace)
	err := fmt.Errorf("process: pid %d stopped: %w", c.Pid(), context.Cause(ctx))
	// Stop is done once the leader is reaped, and a leader that obeys SIGTERM
	// can leave a descendant that ignores it (a hook's migration). Stopping
	// means the whole group: what is left of it gets SIGKILL after the rest
	// of the grace.
	if id, ok := c.Ident(); ok && id.Pgid != 0 {
		if _, gerr := EndStray(context.Background(), id, max(grace-res.Took, 0)); gerr != nil {
			err = errors.Join(err, gerr)
		}
	}
	return res.Exit, err
}

// Output is Run with the child's standard output and error captured together,
// in the order written. spec.Stdout and spec.Stderr must be nil. At most
// MaxOutput bytes are kept, the last ones, after a note of how many were
// dropped. Output returns once the child has been reaped: descendants that
// still hold the pipe do not delay it, and what they write afterwards is
// lost.
func Output(ctx context.Context, spec Spec, grace time.Duration) ([]byte, Exit, error) {
	if spec.Stdout != nil || spec.Stderr != nil {
		return nil, Exit{}, errors.New("process: Output captures stdout and stderr itself; leave them nil")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, Exit{}, fmt.Errorf("process: output pipe for %s: %w", spec.Path, err)
	}
	defer r.Close()
	spec.Stdout, spec.Stderr = w, w
	c, err := Start(spec)
	w.Close() // The child has its copy; EOF comes when it and its descendants close theirs.
	if err != nil {
		return nil, Exit{}, err
	}

	// A reader keeps the pipe from filling up, which would block the child.
	out := &tail{max: MaxOutput}
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(out, r)
	}()
	exit, err := c.finish(ctx, grace)

	// Everything the child wrote is in the pipe now. Unblock the reader in
	// case a descendant keeps the pipe open, then take what is left without
	// waiting for more.
	_ = r.SetReadDeadline(time.Now())
	<-read
	drain(r, out)
	return out.bytes(), exit, err
}

// drain reads what is buffered in the (non-blocking) pipe without waiting.
func drain(r *os.File, out *tail) {
	if r.SetReadDeadline(time.Time{}) != nil {
		return
	}
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	_ = rc.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.Read(int(fd), buf)
			if n > 0 {
				out.Write(buf[:n])
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if n <= 0 || err != nil {
				return true // EOF, EAGAIN (nothing more) or an error: never wait
			}
		}
	})
}

// tail keeps the last max bytes written to it.
type tail struct {
	buf     []byte
	max     int
	dropped int64
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > t.max {
		t.dropped += int64(len(p) - t.max)
		p = p[len(p)-t.max:]
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.dropped += int64(over)
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) bytes() []byte {
	if t.dropped == 0 {
		return t.buf
	}
	return append([]byte("[… "+strconv.FormatInt(t.dropped, 10)+" bytes dropped …]\n"), t.buf...)
}
