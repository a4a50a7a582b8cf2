package observe

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// StatusSchema is the version of the Status home. Fields are only ever
// added; a change of meaning gets a new number.
const StatusSchema = 1

// Status is what a running vigil knows and the filesystem does not: the
// content of the status file and of GET /status. The JSON names are stable.
type Status struct {
	Schema       int          `json:"schema"`
	Vigil        VigilStatus  `json:"vigil"`
	App          AppStatus    `json:"app"`
	Upgrading    *Upgrading   `json:"upgrade_in_progress,omitempty"`
	LastUpgrade  *UpgradeEnd  `json:"last_upgrade,omitempty"`
	LastBackup   *BackupEnd   `json:"last_backup,omitempty"`
	LastDownload *DownloadEnd `json:"last_download,omitempty"`
}

// VigilStatus describes the vigil process itself.
type VigilStatus struct {
	Pid     int       `json:"pid"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// Stopped is set by the last write, when vigil exits normally. A file
	// without it whose pid is gone means vigil was killed.
	Stopped  time.Time `json:"stopped,omitzero"`
	Stopping bool      `json:"stopping,omitempty"`
	// Failure is the error vigil will not recover from (a failed upgrade).
	Failure string `json:"failure,omitempty"`
}

// AppStatus describes the supervised node.
type AppStatus struct {
	Running   bool      `json:"running"`
	Pid       int       `json:"pid,omitempty"`
	Bin       string    `json:"bin,omitempty"`
	Installed string    `json:"installed,omitempty"` // "genesis" or the upgrade directory
	Started   time.Time `json:"started,omitzero"`
	// HaltHeight is the --halt-height the app runs with (0: none), for the
	// scheduled upgrade HaltFor, or the operator's own when HaltFor is "".
	HaltHeight int64  `json:"halt_height,omitempty"`
	HaltFor    string `json:"halt_for,omitempty"`
	Restarts   int    `json:"restarts"` // crash restarts since vigil started
	LastExit   *Exit  `json:"last_exit,omitempty"`
}

// Exit is how the app last ended.
type Exit struct {
	Code     int       `json:"code"`             // 128+signo when a signal killed it
	Signal   string    `json:"signal,omitempty"` // "SIGKILL"
	At       time.Time `json:"at"`
	Expected bool      `json:"expected"` // vigil stopped it (upgrade, shutdown)
}

// Upgrading is an upgrade between its detection and its end.
type Upgrading struct {
	Name   string    `json:"name"`
	Height int64     `json:"height"`
	Step   string    `json:"step"`
	Since  time.Time `json:"since"`
}

// Results of UpgradeEnd.
const (
	UpgradeDone   = "done"
	UpgradeFailed = "failed"
)

// UpgradeEnd is the last upgrade that finished, either way.
type UpgradeEnd struct {
	Name          string    `json:"name"`
	Height        int64     `json:"height"`
	Result        string    `json:"result"` // UpgradeDone | UpgradeFailed
	Error         string    `json:"error,omitempty"`
	At            time.Time `json:"at"`
	PickupSeconds float64   `json:"pickup_seconds,omitempty"` // detection to the new binary started
}

// BackupEnd is the last finished backup of data/.
type BackupEnd struct {
	Upgrade     string    `json:"upgrade"`
	Path        string    `json:"path"`
	Strategy    string    `json:"strategy,omitempty"`
	Files       int       `json:"files"`
	Bytes       int64     `json:"bytes"`
	TookSeconds float64   `json:"took_seconds"`
	At          time.Time `json:"at"`
}

// DownloadEnd is the last upgrade binary download that ended.
type DownloadEnd struct {
	Upgrade     string    `json:"upgrade"`
	Height      int64     `json:"height"`
	OK          bool      `json:"ok"`
	Error       string    `json:"error,omitempty"`
	TookSeconds float64   `json:"took_seconds"`
	At          time.Time `json:"at"`
}

// ReadStatus reads a status file written by a vigil (running or not).
func ReadStatus(path string) (Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return s, nil
}

// clone deep-copies s so a snapshot shares no pointers with the live state.
func (s Status) clone() Status {
	c := s
	c.App.LastExit = copyOf(s.App.LastExit)
	c.Upgrading = copyOf(s.Upgrading)
	c.LastUpgrade = copyOf(s.LastUpgrade)
	c.LastBackup = copyOf(s.LastBackup)
	c.LastDownload = copyOf(s.LastDownload)
	return c
}

// copyOf returns a pointer to a copy of *p, or nil for nil.
func copyOf[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
