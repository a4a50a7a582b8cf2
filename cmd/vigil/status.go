package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/inspect"
	"github.com/vigilhq/vigil/observe"
)

// ---- the observer of `vigil run` ----

// observer runs the metrics, probes and status file for `vigil run`.
type observer struct {
	*observe.Observer
	cancel context.CancelFunc
	done   chan error
}

// startObserver binds VIGIL_LISTEN (if set) and starts the observer. A port
// that cannot be bound is a startup error: an operator who asked for metrics
// wants to know now, not from a missing scrape target.
func startObserver(cfg config.Config, log *slog.Logger) (*observer, error) {
	o := observe.New(observe.Options{
		StatusFile: cfg.Layout().StatusFile(),
		Version:    versionString(),
		Logger:     log.With("component", "observe"),
	})
	var ln net.Listener
	if cfg.Listen != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("%s: cannot listen on %s: %w", config.EnvListen, cfg.Listen, err)
		}
		log.Info("serving /metrics, /healthz, /readyz and /status", "addr", ln.Addr().String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	ob := &observer{Observer: o, cancel: cancel, done: make(chan error, 1)}
	go func() { ob.done <- o.Run(ctx, ln) }()
	return ob, nil
}

// stop stops the server and waits for the last status write (Fail has
// recorded how the reactor ended).
func (ob *observer) stop() {
	ob.cancel()
	<-ob.done // Run has logged a server failure itself
}

// ---- options shared by status and doctor ----

type homeOpts struct {
	home, name, configFile string
	timeout                time.Duration
	json                   bool
}

const defaultCheckTimeout = 5 * time.Second

// parseHomeOpts parses the flags of status and doctor. They work on any home,
// without the service's environment: --home and --name win over
// DAEMON_HOME and DAEMON_NAME.
func parseHomeOpts(cmd string, args []string, withJSON bool) (homeOpts, error) {
	var o homeOpts
	set := flag.NewFlagSet(cmd, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.StringVar(&o.home, "home", "", "")
	set.StringVar(&o.name, "name", "", "")
	set.StringVar(&o.configFile, configFlag, "", "")
	set.StringVar(&o.configFile, "c", "", "")
	set.DurationVar(&o.timeout, "timeout", defaultCheckTimeout, "")
	if withJSON {
		set.BoolVar(&o.json, "json", false, "")
	}
	usage := fmt.Sprintf("usage: vigil %s [--home DIR] [--name NAME] [--timeout 5s] [-c FILE]", cmd)
	if withJSON {
		usage += " [--json]"
	}
	if err := set.Parse(args); err != nil {
		return o, fmt.Errorf("%s: %w\n%s", cmd, err, usage)
	}
	if set.NArg() > 0 {
		return o, fmt.Errorf("%s takes no arguments, got %q\n%s", cmd, set.Args(), usage)
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("%s: --timeout must be positive", cmd)
	}
	if o.home != "" {
		abs, err := filepath.Abs(o.home)
		if err != nil {
			return o, fmt.Errorf("--home: %w", err)
		}
		o.home = abs
	}
	return o, nil
}

// config loads the settings with the flags on top of the environment.
func (o homeOpts) config(getenv getenvFunc) (config.Config, error) {
	return config.LoadHome(getenv, o.home, o.name, o.configFile)
}

// ---- `vigil status` ----

func statusCmd(args []string, stdout io.Writer, getenv getenvFunc) error {
	o, r, err := inspectHome("status", args, true, getenv, func(o homeOpts, opts *inspect.Options) {
		opts.Version = func(bin string) (string, error) { return inspect.RunVersion(bin, o.timeout) }
	})
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	inspect.WriteText(stdout, r, time.Now())
	return nil
}

// inspectHome parses the command line of status or doctor, loads the settings and inspects the
// home with the options they give, adjusted by tune.
func inspectHome(cmd string, args []string, withJSON bool, getenv getenvFunc, tune func(homeOpts, *inspect.Options)) (homeOpts, inspect.Report, error) {
	o, err := parseHomeOpts(cmd, args, withJSON)
	if err != nil {
		return o, inspect.Report{}, err
	}
	cfg, err := o.config(getenv)
	if err != nil {
		return o, inspect.Report{}, err
	}
	opts := inspectOptions(cfg)
	tune(o, &opts)
	return o, inspect.Home(cfg.Layout(), opts), nil
}

// inspectOptions are the settings status and doctor judge a home with.
func inspectOptions(cfg config.Config) inspect.Options {
	return inspect.Options{
		BackupDir:        cfg.BackupDir,
		SkipBackup:       cfg.SkipBackup,
		BackupMode:       backup.Strategy(cfg.BackupMode),
		BackupSkipNoRoom: cfg.BackupIfNoSpace == "skip",
		CustomPreupgrade: cfg.CustomPreupgrade,
		AllowDownload:    cfg.AllowDownload,
	}
}
