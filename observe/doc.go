// Package observe turns the reactor's events into what operators look at:
// Prometheus metrics, liveness and readiness endpoints (GET /metrics,
// /healthz, /readyz, and /status for the Status as JSON), and a small status
// file ($DAEMON_HOME/cosmovisor/vigil-status.json) that `vigil status` reads
// to learn what only a running vigil knows (pids, restarts, last exit, last
// upgrade, backup and download).
//
// # Concurrency contract
//
// Observer.Observe is an event.Func: it may be called from any goroutine,
// concurrently, before, during or after Run, and it never blocks on I/O. It
// updates the in-memory state under a mutex held only for that update, and
// hands a copy of the new state to the writer through a one-slot mailbox: a
// newer snapshot replaces one the writer has not taken yet, so the file
// always ends at the latest state and the caller never waits for a disk.
//
// Run owns every goroutine of the package: the status-file writer and, when
// given a listener, the HTTP server. They wait on channels and sockets only;
// nothing is periodic, so an idle vigil wakes up for none of them. (A scrape
// arms the connection's read and write deadlines; the Go runtime removes a
// stopped timer lazily and may wake once at its old expiry, up to 30 s
// later. That is a cost of the scrape, not of the listener.) Run
// returns after ctx is cancelled, once the server has shut down and the
// final state (with the stop time) has been written.
//
// The metrics live on the Observer's own registry, never on Prometheus'
// global one, and are computed from events, except the Go runtime and
// process collectors, which read their values when scraped.
package observe
