package reactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/process"
	"github.com/vigilhq/vigil/reactor/layout"
	"github.com/vigilhq/vigil/reactor/plan"
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
	if _, err := layout.CheckBinary(script); err != nil {
		return fmt.Errorf("COSMOVISOR_CUSTOM_PREUPGRADE: %w", err)
	}
	out, exit, err := runHook(ctx, r.l.Home, script, p.Name, strconv.FormatInt(p.Height, 10))
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
		out, exit, err := runHook(ctx, "", bin, "pre-upgrade")
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

// runHook runs a short-lived command with stdout and stderr captured for the
// log. Cancelling ctx sends SIGTERM, then SIGKILL after 10s.
func runHook(ctx context.Context, dir, path string, args ...string) (string, process.Exit, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	out := strings.TrimSpace(buf.String())
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, process.Exit{}, nil
	case ctx.Err() != nil:
		return out, process.Exit{}, ctx.Err()
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return out, process.Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}, nil
		}
		return out, process.Exit{Code: ee.ExitCode()}, nil
	default:
		return out, process.Exit{}, err
	}
}
