package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/process"
)

// RunVersion runs `bin version` and returns the first line of its output.
// The command leads its own process group, stopped whole at the timeout, so
// a script that forked a sleeper cannot outlive it.
func RunVersion(bin string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// SDK versions before 0.46 print the version on stderr: Output takes both.
	out, exit, err := process.Output(ctx, process.Spec{Path: bin, Args: []string{"version"}, Env: versionEnv(bin), OwnGroup: true}, versionGrace)
	line := firstLine(string(out))
	return line, versionErr(ctx, bin+" version", timeout, exit, err, line)
}

// versionEnv is the environment the node gets from vigil (home.ChildEnv):
// its version's lib/ first in LD_LIBRARY_PATH. Without it, a binary that
// needs the libwasmvm shipped in upgrades/<name>/lib/ fails its `version`
// here although vigil would run it fine. bin is <version dir>/bin/<name>.
func versionEnv(bin string) []string {
	return home.Layout{}.ChildEnv(filepath.Dir(filepath.Dir(bin)), os.Environ())
}

// versionErr says why the command cmd did not answer; line is its first line of output.
func versionErr(ctx context.Context, cmd string, timeout time.Duration, exit process.Exit, err error, line string) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("`%s` did not finish within %v", cmd, timeout)
	case err != nil:
		return fmt.Errorf("`%s`: %w", cmd, err)
	case !exit.Success() && line != "":
		return fmt.Errorf("`%s`: %s: %s", cmd, exit, line)
	case !exit.Success():
		return fmt.Errorf("`%s`: %s", cmd, exit)
	}
	return nil
}

// AppBin is the binary `vigil run` would start: current's, or genesis's
// while there is no `current` yet (run links it to genesis first). It must
// be runnable. Nothing in the home is changed.
func AppBin(l home.Layout) (string, error) {
	dir := l.GenesisDir()
	in, err := l.Installed()
	switch {
	case err == nil:
		dir = in.Dir
	case !errors.Is(err, home.ErrNoCurrent):
		return "", err
	}
	bin := l.Bin(dir)
	if err := home.Runnable(bin); err != nil {
		return "", fmt.Errorf("no app to run: %w; %s", err, config.InitHint)
	}
	return bin, nil
}

// VersionJSON runs `bin version --long --output json args...`, as
// `cosmovisor version -o json` does, and returns the JSON object the app
// printed, compacted. The app's stdout is read apart from its stderr (where
// warnings go), and stderr only when stdout has no JSON: SDKs before 0.46
// print the version there. The command leads its own process group, stopped
// whole at the timeout.
func VersionJSON(bin string, args []string, timeout time.Duration) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := bin + " version --long --output json"
	var outs [2]*os.File // stdout, stderr
	for i := range outs {
		f, err := os.CreateTemp("", "vigil-version-*")
		if err != nil {
			return nil, fmt.Errorf("capture `%s`: %w", cmd, err)
		}
		os.Remove(f.Name()) // gone with the last descriptor
		defer f.Close()
		outs[i] = f
	}
	spec := process.Spec{Path: bin, Args: append([]string{"version", "--long", "--output", "json"}, args...),
		Env: versionEnv(bin), Stdout: outs[0], Stderr: outs[1], OwnGroup: true}
	exit, err := process.Run(ctx, spec, versionGrace)
	stdout, stderr := readBack(outs[0]), readBack(outs[1])
	if err := versionErr(ctx, cmd, timeout, exit, err, firstLine(string(stderr)+"\n"+string(stdout))); err != nil {
		return nil, err
	}
	for _, out := range [][]byte{stdout, stderr} {
		if obj := lastJSONObject(out); obj != nil {
			return obj, nil
		}
	}
	return nil, fmt.Errorf("`%s` printed no JSON object: %q", cmd, firstLine(string(stdout)+"\n"+string(stderr)))
}

// readBack reads what a child wrote to f, up to process.MaxOutput bytes.
func readBack(f *os.File) []byte {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, process.MaxOutput))
	return b
}

// lastJSONObject is out compacted if it is one JSON object, else its last
// line that is one (an app may print a notice before it); nil if none.
func lastJSONObject(out []byte) json.RawMessage {
	lines := append(bytes.Split(out, []byte("\n")), out)
	for i := len(lines) - 1; i >= 0; i-- {
		l := bytes.TrimSpace(lines[i])
		var buf bytes.Buffer
		if len(l) > 0 && l[0] == '{' && json.Compact(&buf, l) == nil {
			return buf.Bytes()
		}
	}
	return nil
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
