package inspect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/process"
)

// RunVersion runs `bin version` and returns the first line of its output.
// The command leads its own process group, stopped whole at the timeout, so
// a script that forked a sleeper cannot outlive it.
func RunVersion(bin string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// SDK versions before 0.46 print the version on stderr: Output takes both.
	out, exit, err := process.Output(ctx, process.Spec{Path: bin, Args: []string{"version"}, OwnGroup: true}, versionGrace)
	line := firstLine(string(out))
	switch {
	case ctx.Err() != nil:
		return line, fmt.Errorf("`%s version` did not finish within %v", bin, timeout)
	case err != nil:
		return line, fmt.Errorf("`%s version`: %w", bin, err)
	case !exit.Success() && line != "":
		return line, fmt.Errorf("`%s version`: %s: %s", bin, exit, line)
	case !exit.Success():
		return line, fmt.Errorf("`%s version`: %s", bin, exit)
	}
	return line, nil
}

// versionGrace is how long a timed-out `version` gets between SIGTERM and
// SIGKILL: it has no state to save.
const versionGrace = 500 * time.Millisecond

func firstLine(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return l
		}
	}
	return ""
}

// VersionCache runs each binary's `version` once: doctor asks for the
// pending binary, which is also a staged one.
func VersionCache(run func(bin string) (string, error)) func(bin string) (string, error) {
	type result struct {
		v   string
		err error
	}
	seen := map[string]result{}
	return func(bin string) (string, error) {
		if r, ok := seen[bin]; ok {
			return r.v, r.err
		}
		v, err := run(bin)
		seen[bin] = result{v, err}
		return v, err
	}
}
