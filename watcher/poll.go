package watcher

import (
	"context"
	"os"
	"time"
)

// fileState is what the poller compares. Size and mtime alone miss a
// rename-replace that keeps both (mtime resolution can be coarse), so the
// inode identity is compared too.
type fileState struct {
	exists bool
	size   int64
	mtime  int64 // ns since the epoch
	fi     os.FileInfo
}

// statFile stats path. Any error (the file or the directory is missing,
// permission) counts as "absent": the consumer's read will say more.
func statFile(path string) fileState {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}
	}
	return fileState{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano(), fi: fi}
}

// differs reports whether a and b describe different versions of the file.
func (a fileState) differs(b fileState) bool {
	if a.exists != b.exists {
		return true
	}
	if !a.exists {
		return false
	}
	return a.size != b.size || a.mtime != b.mtime || !os.SameFile(a.fi, b.fi)
}

// poll is the poll backend: stat every PollInterval, report any difference
// from the last state seen. A missing directory is just an absent file.
// first, if not empty, is marked pending right away (ReasonStart); when it
// is empty (a fallback while running) the current state is compared with
// base at once, since events may have been lost on the way here.
func (r *runner) poll(ctx context.Context, base fileState, first string) error {
	if first != "" {
		r.em.mark(first)
	} else if st := statFile(r.file); st.differs(base) {
		base = st
		r.em.mark(ReasonPoll)
	}
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r.em.ch() <- r.em.pending:
			r.em.sent()
		case <-t.C:
			st := statFile(r.file)
			if st.differs(base) {
				base = st
				r.trace("poll-change", "")
				r.em.mark(ReasonPoll)
			}
		}
	}
}
