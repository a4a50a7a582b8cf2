package reactor

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
)

// Exit codes of `<app> pre-upgrade`, the Cosmos SDK convention.
const (
	preUpgradeOK             = 0
	preUpgradeNotImplemented = 1
	preUpgradeFailed         = 30
	preUpgradeRetry          = 31
)

// customPreupgrade runs COSMOVISOR_CUSTOM_PREUPGRADE <name> <height> in $DAEMON_HOME.
func (r *reactor) customPreupgrade(ctx context.Context, p plan.Plan) error {
	script := r.cfg.CustomPreupgrade
	if script == "" {
		return nil
	}
	if _, err := home.CheckBinary(script); err != nil {
		return fmt.Errorf("COSMOVISOR_CUSTOM_PREUPGRADE: %w", err)
	}
	out, exit, err := r.runHook(ctx, r.l.Home, process.MarkEnv(r.cfg.Env, r.l.Home), script, p.Name, strconv.FormatInt(p.Height, 10))
	if err != nil {
		return fmt.Errorf("COSMOVISOR_CUSTOM_PREUPGRADE %s: %w", script, err)
	}
	if !exit.Success() {
		return fmt.Errorf("COSMOVISOR_CUSTOM_PREUPGRADE %s failed: %s: %s", script, exit, out)
	}
	r.log.Info("custom pre-upgrade done", "path", script, "output", out)
	return nil
}

// preUpgrade runs `<new binary> pre-upgrade` before the switch, so a failure
// leaves `current` on the old version (cosmovisor runs it after).
func (r *reactor) preUpgrade(ctx context.Context, bin string) error {
	for attempt := 1; ; attempt++ {
		// From its version's directory: its lib/ too (home.ChildEnv).
		out, exit, err := r.runHook(ctx, "", r.childEnv(filepath.Dir(filepath.Dir(bin))), bin, "pre-upgrade")
		if err != nil {
			return fmt.Errorf("pre-upgrade: %w", err)
		}
		switch {
		case exit.Signal == 0 && exit.Code == preUpgradeOK:
			r.log.Info("pre-upgrade done", "output", out)
			return nil
		case exit.Signal == 0 && exit.Code == preUpgradeNotImplemented:
			r.log.Info("pre-upgrade not implemented by the app; continuing")
			return nil
		case exit.Signal == 0 && exit.Code == preUpgradeRetry && attempt <= r.cfg.PreupgradeMaxRetries:
			r.log.Warn("pre-upgrade asked for a retry", "attempt", attempt, "max_retries", r.cfg.PreupgradeMaxRetries, "output", out)
			if err := sleep(ctx, r.cfg.PreupgradeRetryPause); err != nil {
				return err
			}
		case exit.Signal == 0 && exit.Code == preUpgradeRetry:
			return fmt.Errorf("pre-upgrade failed: exit status 31 after %d attempts (DAEMON_PREUPGRADE_MAX_RETRIES=%d): %s", attempt, r.cfg.PreupgradeMaxRetries, out)
		default:
			return fmt.Errorf("pre-upgrade failed: %s: %s", exit, out)
		}
	}
}

// hookGrace is how long a hook gets after SIGTERM when the upgrade is
// interrupted, before SIGKILL.
const hookGrace = 10 * time.Second

// runHook runs a short-lived command with stdout and stderr captured for the
// log. It goes through the process package, never os/exec, so that vigil as
// PID 1 does not reap the hook behind its waiter's back. Cancelling ctx sends
// SIGTERM to the hook's process group, then SIGKILL after hookGrace to what
// is left of the group, the leader or not. The hook is recorded like the
// node: if vigil is killed while it runs, the next vigil ends its group
// before it runs anything (EndLeftovers), so a hook never runs twice at once.
func (r *reactor) runHook(ctx context.Context, dir string, env []string, path string, args ...string) (string, process.Exit, error) {
	out, exit, err := process.Output(ctx, process.Spec{
		Path: path,
		Args: args,
		Dir:  dir,
		Env:  env,
		// Its own group, so a stop reaches whatever the hook started.
		OwnGroup: true,
		// The hook itself is asked to stop if vigil is killed; what it
		// started is ended by the next vigil, from the record (Track).
		ParentDeathSignal: syscall.SIGTERM,
		Track:             r.procs.track("hook"),
	}, hookGrace)
	return strings.TrimSpace(string(out)), exit, err
}
