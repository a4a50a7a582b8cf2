// Package watcher turns filesystem noise in the node's data directory into
// one fact: "upgrade-info.json may have changed".
//
// The watcher never reads the file. The consumer re-reads and parses it on
// every [Change]; a parse failure there means "not finished writing yet"
// (x/upgrade writes with a plain os.WriteFile, which truncates first), and the
// next Change will follow the next write. For the same reason there is no
// debounce timer: every relevant event is reported at once, and coalescing
// (below) keeps a busy consumer from falling behind.
//
// # Backends
//
// With inotify (fsnotify) the watcher watches the directory, not the file:
// the file is replaced by rename, written in place, or appears late, and a
// watch on the file itself would stay on the old inode. Events are filtered
// on the base name inside the loop that reads them, so the steady stream of
// CometBFT's priv_validator_state.json rewrites costs a string compare each
// and never reaches the consumer. Chmod is ignored. The parent directory is
// watched too, so that a data directory that is removed or renamed away and
// then recreated (snapshot restore) gets its watch re-armed ([ReasonRearm]).
// A slow safety-net poll ([Config.SafetyInterval]) stats the file and reports
// a difference that no event explained ([ReasonSafety]): a lost event delays
// an upgrade, it never loses it. It is the only periodic wake-up in this mode.
//
// Polling (stat every [Config.PollInterval]; existence, size, mtime, inode)
// is used when asked for, or when inotify cannot work: no inotify instance
// left (EMFILE), no watch left (ENOSPC), or a filesystem that accepts watches
// but delivers no events (NFS, SMB/CIFS, FUSE, 9p). The reason is logged once
// at Warn. If inotify breaks while running, the watcher switches to polling.
//
// # Concurrency contract
//
//   - [Run] runs its loop in the calling goroutine. Everything it starts (the
//     fsnotify watcher with its reader goroutine, the ticker) is stopped and
//     waited for before Run returns.
//   - Run is the only sender on out and closes out when it returns, on every
//     path (cancellation, or an error at start). The caller must not close it.
//   - Sends coalesce: at most one Change is pending inside Run. While the
//     consumer is busy, further events are folded into the pending Change,
//     which keeps the Reason and At of the oldest fact it stands for. The
//     fsnotify channels are drained in the same select as the send, so a slow
//     consumer never blocks the kernel queue and nothing queues unboundedly.
//     Pass an unbuffered channel: a buffer adds its capacity to the one
//     pending Change.
//   - Every send selects on ctx.Done(); a pending Change is dropped when the
//     context ends.
//   - Overflow: when the inotify queue overflows, events are lost and cannot be
//     rebuilt. The watcher sends [ReasonOverflow]; the consumer rescans (re-reads
//     the file), exactly as for any other Change.
//
// Raw events are logged at Debug level (there is no environment switch: no
// package below cmd/ reads the environment).
package watcher
