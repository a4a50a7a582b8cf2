// Package reactor turns "upgrade-info.json may have changed" into a finished
// upgrade. It runs a pipeline of stages, each in its own goroutine, joined by
// typed channels:
//
//		watcher.Change ─▶ detect ─▶ target ─▶ prepare ─▶ ready ─▶ supervise (owns the app)
//		                    ▲                                        │
//		                    └──────────── query (start / app exit) ◀─┘
//
//	  - detect reads and validates the file and compares it with what `current`
//	    has installed; it emits each new upgrade once. A parse error means "not
//	    finished writing": it is logged once and the next Change is awaited.
//	  - prepare makes ready everything that does not need the node stopped: the
//	    upgrade binary (checked, or fetched) and its marker file. A missing binary
//	    is retried with backoff while the node keeps running, so an operator who
//	    copies it in late is picked up without a restart.
//	  - supervise owns the child process: it starts it, forwards signals, and on a
//	    ready upgrade stops it gracefully, backs up, runs the hooks, switches
//	    `current` and starts the new binary.
//
// # Concurrency
//
// Each stage's state lives in its goroutine. Stage outputs are one-slot
// mailboxes: a stage keeps its latest result and offers it with a select that
// also serves its inputs, so no stage ever blocks the one before it and a
// newer plan replaces an older one that was not yet taken. Before the first
// start and after every exit of the app, supervise asks detect (a request with
// a reply channel) whether an upgrade is pending, which is how a node that
// writes the file and dies at once, or a vigil restarted at the upgrade
// height, never starts the old binary again.
//
// # What a killed vigil leaves behind
//
// Every child (the node, a hook) is started with a process.Tracker that
// keeps home.ProcsFile equal to the children started and not yet reaped
// (procRecord, the one place that writes it). EndLeftovers, called by cmd
// with the run lock held and before Run, ends what that file names: a
// killed vigil's node that ignored the parent-death SIGTERM, or a hook's
// group, so that nothing starts, backs up or switches beside them.
//
// # Stop signals
//
// The operator's first TERM or INT is forwarded and arms a timer of
// ShutdownGrace, after which the node is killed. A repeat of the same signal
// kills at once only if it comes stopDebounce (1 s) after the first; sooner,
// it is the same request sent twice and is only forwarded.
//
// Run owns the goroutines: it cancels them when supervise returns and waits for
// every one before returning.
package reactor
