// Package sdnotify tells systemd what vigil is doing, through the sd_notify
// protocol (a datagram per message on the unix socket named by
// NOTIFY_SOCKET): READY=1 once the node has been started, a STATUS= line for
// every start and upgrade step (shown by `systemctl status`), WATCHDOG=1 pings
// while vigil is healthy when the unit sets WatchdogSec=, and STOPPING=1 on
// the way out.
//
// The package reads no environment variables: cmd passes the socket path and
// the watchdog interval (WatchdogInterval parses WATCHDOG_USEC and
// WATCHDOG_PID). With no socket, New returns a Notifier that does nothing and
// starts no goroutine.
//
// # Concurrency contract
//
// Observe is an event.Func: it may be called from any goroutine, never blocks
// and does no I/O. It queues the message for the Notifier's one goroutine,
// which sends the queue in order and, when the watchdog is on, pings at half
// the interval (the only timer; without a watchdog the goroutine sleeps on a
// channel and costs no wake-ups). Close queues STOPPING=1 if it was not sent
// yet, lets the goroutine send what is queued (each send is bounded by a
// write deadline) and waits for it to end. Close may be called more than
// once, from any goroutine; Observe after Close does nothing.
//
// Health is an event.Func too, safe for concurrent use; its Healthy method is
// what cmd passes as the watchdog's health check.
package sdnotify
