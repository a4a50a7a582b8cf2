package main

import (
	"log/slog"
	"os"

	"github.com/vigilhq/vigil/sdnotify"
)

// systemd's variables for Type=notify and WatchdogSec.
var notifyVars = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}

// systemdNotifier builds the sd_notify sender (contrib/systemd: READY,
// STATUS, WATCHDOG, STOPPING); without NOTIFY_SOCKET it does nothing. The
// variables are then removed from vigil's environment so the node does not
// inherit them: the service's notifications are vigil's to send
// (sd_notify's unset_environment).
func systemdNotifier(getenv getenvFunc, log *slog.Logger) (*sdnotify.Notifier, *sdnotify.Health) {
	socket, _ := getenv("NOTIFY_SOCKET")
	usec, _ := getenv("WATCHDOG_USEC")
	pid, _ := getenv("WATCHDOG_PID")
	for _, v := range notifyVars {
		os.Unsetenv(v)
	}
	watchdog, err := sdnotify.WatchdogInterval(usec, pid, os.Getpid())
	if err != nil {
		log.Warn("systemd watchdog disabled", "err", err)
	}
	health := &sdnotify.Health{}
	n := sdnotify.New(sdnotify.Config{Socket: socket, Watchdog: watchdog, Healthy: health.Healthy, Logger: log.With("component", "sdnotify")})
	return n, health
}
