// Package event is the vocabulary the reactor uses to tell observers
// (metrics, systemd notification, the status file) what it is doing.
//
// Observers are plain functions called synchronously from the reactor's
// goroutines, so they must be quick and must not block: update a counter,
// write a datagram, hand a value to their own goroutine. They may be called
// from more than one goroutine at once.
package event

import (
	"time"

	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
)

// Kind says what happened; the comment on each kind lists the Event fields it sets.
type Kind int

const (
	// AppStarted: the app was spawned. Bin, Pid, Installed, Halt, HaltFor.
	AppStarted Kind = iota + 1
	// AppExited: the app exited. Exit; Expected is true when vigil stopped it (upgrade, shutdown).
	AppExited
	// AppRestarting: the restart policy will start the app again after a crash. Attempt, Wait.
	AppRestarting
	// UpgradeDetected: a new plan was found in upgrade-info.json. Plan.
	UpgradeDetected
	// UpgradeStep: an upgrade moved to the next step. Plan, Step (a short human phrase).
	UpgradeStep
	// UpgradeDone: the upgrade was applied and the new binary started (or,
	// with DAEMON_RESTART_AFTER_UPGRADE off, `current` switched). Plan, Took
	// (detection to that moment).
	UpgradeDone
	// UpgradeFailed: the upgrade could not be applied. Plan, Err.
	UpgradeFailed
	// BackupDone: a backup finished. Plan, Path, Strategy, Files, Bytes, Took.
	BackupDone
	// DownloadDone: an upgrade binary download ended. Plan, Took, Err (nil on success).
	DownloadDone
	// Stopping: vigil is shutting down.
	Stopping
)

func (k Kind) String() string {
	switch k {
	case AppStarted:
		return "app_started"
	case AppExited:
		return "app_exited"
	case AppRestarting:
		return "app_restarting"
	case UpgradeDetected:
		return "upgrade_detected"
	case UpgradeStep:
		return "upgrade_step"
	case UpgradeDone:
		return "upgrade_done"
	case UpgradeFailed:
		return "upgrade_failed"
	case BackupDone:
		return "backup_done"
	case DownloadDone:
		return "download_done"
	case Stopping:
		return "stopping"
	}
	return "unknown"
}

// Event is one thing that happened. Only the fields its Kind lists are set.
type Event struct {
	Kind Kind
	At   time.Time

	Plan plan.Plan
	Step string
	Err  error
	Took time.Duration

	Bin       string // absolute path of the app binary
	Pid       int
	Installed string // the upgrade `current` points at: "genesis" or the upgrade's directory name
	Halt      int64  // the --halt-height the app runs with; 0 = none
	HaltFor   string // the scheduled upgrade Halt is for; "" when it is the operator's own

	Exit     process.Exit
	Expected bool

	Attempt int
	Wait    time.Duration

	Path     string
	Strategy string
	Files    int
	Bytes    int64
}

// Func receives events. A nil Func is valid and drops them.
type Func func(Event)

// Emit stamps e with the current time and passes it on.
func (f Func) Emit(e Event) {
	if f == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	f(e)
}

// Tee returns a Func that passes every event to each non-nil f in order.
func Tee(fs ...Func) Func {
	var live []Func
	for _, f := range fs {
		if f != nil {
			live = append(live, f)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return func(e Event) {
		for _, f := range live {
			f(e)
		}
	}
}
