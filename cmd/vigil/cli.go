package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/inspect"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
)

// exitError is vigil's own failure status (config errors, failed upgrades).
// The app's statuses pass through unchanged; cosmovisor also uses 1.
const exitError = 1

const usage = `vigil supervises a Cosmos SDK node binary and applies its upgrades:
a drop-in replacement for cosmovisor.

Usage:
  vigil run <app args...> [--cosmovisor-config FILE]   start the app and follow upgrades
  vigil init <path-to-app-binary>                      install the genesis binary, create current and data/
  vigil add-upgrade <name> <path> [--force] [--upgrade-height H]   install; with H, schedule at height H
  vigil add-batch-upgrade --upgrade-list n:path:H,... | --upgrade-file CSV
  vigil show-manual-upgrades                           print the scheduled upgrades (data/upgrade-info.json.batch)
  vigil show-upgrade-info                              print $DAEMON_HOME/data/upgrade-info.json
  vigil prepare-upgrade [--rpc ADDR]                   download the chain's scheduled upgrade binary now (even with downloads off)
  vigil backup list [--json] | restore <name>          show the data backups, or restore one (node stopped)
  vigil status [--json] [--home DIR] [--name NAME]     what runs, what is installed, staged and pending
  vigil doctor [--home DIR] [--name NAME] [--timeout D]
                                                       check that the next upgrade can succeed
  vigil config                                         show the effective settings and their sources
  vigil version [-o text|json] [--cosmovisor-only]     vigil's version, then the app's (if installed)
  vigil help

Settings come from the cosmovisor environment variables (DAEMON_HOME, DAEMON_NAME, ...) or
a TOML file given with -c/--cosmovisor-config; the environment wins. The node signals an
upgrade by writing DAEMON_HOME/data/upgrade-info.json. See README.md for every setting.
`

type getenvFunc func(string) (string, bool)

func cli(args []string, stdin, stdout, stderr *os.File, getenv getenvFunc) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		return runCmd(rest, stdin, stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		return versionCmd(rest, stdin, stdout, stderr, getenv)
	case "config":
		err = configCmd(rest, stdout, getenv)
	case "init":
		err = initCmd(rest, stdout, getenv)
	case "add-upgrade", "add-batch-upgrade":
		err = addUpgradeCmd(rest, stdout, getenv, cmd == "add-batch-upgrade")
	case "show-upgrade-info", "show-manual-upgrades":
		err = showCmd(rest, stdout, getenv, cmd == "show-manual-upgrades")
	case "prepare-upgrade":
		err = prepareUpgradeCmd(rest, stdout, stderr, getenv)
	case "backup":
		err = backupCmd(rest, stdout, stderr, getenv)
	case "status":
		err = statusCmd(rest, stdout, getenv)
	case "doctor":
		err = doctorCmd(rest, stdout, getenv)
	default:
		err = fmt.Errorf("unknown command %q; run 'vigil help'", cmd)
	}
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	return 0
}

func printError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, "Error: "+line)
	}
}

// loadConfig reads the settings from the environment and the file named by
// --cosmovisor-config (or, with short, -c) in args, and returns the other args.
// `run` passes short=false: every other argument belongs to the app.
func loadConfig(args []string, getenv getenvFunc, short bool) (config.Config, []string, error) {
	file, rest, err := ExtractConfigFlag(args)
	if err != nil {
		return config.Config{}, nil, fmt.Errorf("failed to parse cosmovisor config: %w", err)
	}
	if file == "" && short {
		for i, a := range rest {
			if a == "-c" {
				if i+1 >= len(rest) {
					return config.Config{}, nil, errors.New("-c requires an argument")
				}
				file = rest[i+1]
				rest = append(rest[:i:i], rest[i+2:]...)
				break
			}
		}
	}
	cfg, err := config.Load(getenv, file)
	return cfg, rest, err
}

func runCmd(args []string, stdin, stdout, stderr *os.File, getenv getenvFunc) int {
	cfg, appArgs, err := loadConfig(args, getenv, false)
	if err == nil {
		err = cfg.Validate(true)
	}
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	log := NewLogger(cfg, stderr, isTerminal(stderr))
	exit, err := runService(cfg, appArgs, stdio{stdin, stdout, stderr}, getenv, log)
	var start startError
	switch {
	case errors.As(err, &start):
		printError(stderr, start.err)
		return exitError
	case err != nil:
		log.Error("vigil stopped", "err", err)
		if cfg.DisableLogs {
			printError(stderr, err)
		}
		if exit.Code == 0 {
			return exitError
		}
	}
	return exit.Code
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func versionString() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// versionCmd prints vigil's version, then the app's: its own `version`
// output (extra args passed on) or, with -o json, one JSON object under
// cosmovisor's keys and vigil's. An app that cannot be found (no settings,
// no home, no binary yet) is reported, not a failure: scripts ask before
// `init`. An app whose `version` fails is a failure.
func versionCmd(args []string, stdin, stdout, stderr *os.File, getenv getenvFunc) int {
	o, err := parseVersionArgs(args)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	var bin string
	var appErr error
	if !o.only {
		var cfg config.Config
		if cfg, o.appArgs, appErr = loadConfig(o.appArgs, getenv, true); appErr == nil {
			bin, appErr = inspect.AppBin(cfg.Layout())
		}
	}
	if o.json {
		return versionJSON(stdout, stderr, bin, o, appErr)
	}
	fmt.Fprintln(stdout, "vigil version:", versionString())
	if o.only {
		return 0
	}
	if appErr != nil {
		fmt.Fprintf(stderr, "app version unknown: %s\n", oneLine(appErr))
		return 0
	}
	exit, err := process.Run(context.Background(), process.Spec{Path: bin, Args: append([]string{"version"}, o.appArgs...),
		Stdin: stdin, Stdout: stdout, Stderr: stderr}, 0)
	if err == nil && !exit.Success() {
		err = errors.New(exit.String())
	}
	if err != nil {
		printError(stderr, fmt.Errorf("failed to run version command: %w", err))
		return exitError
	}
	return 0
}

type versionOpts struct {
	only, json bool
	appArgs    []string
}

// parseVersionArgs takes --cosmovisor-only (or --vigil-only) and
// -o/--output text|json; the rest goes to the app.
func parseVersionArgs(args []string) (versionOpts, error) {
	var o versionOpts
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		switch {
		case a == "--cosmovisor-only" || a == "--vigil-only":
			o.only = true
			continue
		case name != "-o" && name != "--output":
			o.appArgs = append(o.appArgs, a)
			continue
		case !hasValue && i+1 < len(args):
			i++
			value = args[i]
		}
		switch value {
		case "text", "json":
			o.json = value == "json"
		default:
			return o, fmt.Errorf("%s must be text or json, got %q", name, value)
		}
	}
	return o, nil
}

// versionJSON prints one JSON object: cosmovisor's keys (cosmovisor_version,
// app_version: the app's own JSON) and vigil's. Nothing else reaches stdout.
func versionJSON(stdout, stderr io.Writer, bin string, o versionOpts, appErr error) int {
	doc := struct {
		Cosmovisor string          `json:"cosmovisor_version"`
		Vigil      string          `json:"vigil_version"`
		App        json.RawMessage `json:"app_version,omitempty"`
		AppErr     string          `json:"app_version_error,omitempty"`
	}{Cosmovisor: versionString(), Vigil: versionString()}
	code := 0
	if !o.only && appErr == nil {
		if doc.App, appErr = inspect.VersionJSON(bin, o.appArgs, defaultCheckTimeout); appErr != nil {
			printError(stderr, appErr)
			code = exitError
		}
	}
	if !o.only && appErr != nil {
		doc.AppErr = oneLine(appErr)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		printError(stderr, err)
		return exitError
	}
	return code
}

// oneLine is err's text on one line (config errors come joined by newlines).
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func configCmd(args []string, stdout io.Writer, getenv getenvFunc) error {
	cfg, rest, err := loadConfig(args, getenv, true)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("config takes no arguments, got %q", rest)
	}
	if err := cfg.Validate(false); err != nil {
		return err
	}
	fmt.Fprint(stdout, cfg.Describe())
	return nil
}

// showCmd prints data/upgrade-info.json as it is (show-upgrade-info) or the
// scheduled upgrades as the batch file holds them, "[]" when none
// (show-manual-upgrades); both on stdout, for scripts.
func showCmd(args []string, stdout io.Writer, getenv getenvFunc, manual bool) error {
	cfg, _, err := loadConfig(args, getenv, true)
	if err != nil {
		return err
	}
	if manual {
		ps, err := cfg.Layout().Scheduled()
		if err == nil {
			_, err = stdout.Write(plan.MarshalBatch(ps))
		}
		return err
	}
	b, err := plan.Read(cfg.UpgradeInfoFile())
	if err != nil {
		return fmt.Errorf("no upgrade scheduled: %w", err)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(b)))
	return nil
}
