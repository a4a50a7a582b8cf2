package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variable names. The TOML keys are the same names in lower case.
const (
	EnvHome                 = "DAEMON_HOME"
	EnvName                 = "DAEMON_NAME"
	EnvAllowDownload        = "DAEMON_ALLOW_DOWNLOAD_BINARIES"
	EnvMustHaveChecksum     = "DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM"
	EnvRestartAfterUpgrade  = "DAEMON_RESTART_AFTER_UPGRADE"
	EnvRestartDelay         = "DAEMON_RESTART_DELAY"
	EnvShutdownGrace        = "DAEMON_SHUTDOWN_GRACE"
	EnvPollInterval         = "DAEMON_POLL_INTERVAL"
	EnvSkipBackup           = "UNSAFE_SKIP_BACKUP"
	EnvBackupDir            = "DAEMON_DATA_BACKUP_DIR"
	EnvPreupgradeMaxRetries = "DAEMON_PREUPGRADE_MAX_RETRIES"
	EnvDisableLogs          = "COSMOVISOR_DISABLE_LOGS"
	EnvColorLogs            = "COSMOVISOR_COLOR_LOGS"
	EnvTimeFormat           = "COSMOVISOR_TIMEFORMAT_LOGS"
	EnvCustomPreupgrade     = "COSMOVISOR_CUSTOM_PREUPGRADE"
	EnvDisableRecase        = "COSMOVISOR_DISABLE_RECASE"
	EnvLogFormat            = "COSMOVISOR_LOG_FORMAT"
	EnvLogLevel             = "COSMOVISOR_LOG_LEVEL"
	EnvWatchMode            = "VIGIL_WATCH_MODE"
	EnvSafetyPollInterval   = "VIGIL_SAFETY_POLL_INTERVAL"
	EnvDownloadMaxTime      = "DAEMON_DOWNLOAD_MAX_TIME"
	EnvRPCAddress           = "VIGIL_RPC_ADDRESS"
	EnvPrefetchInterval     = "VIGIL_PREFETCH_INTERVAL"
	EnvBackupMode           = "VIGIL_BACKUP_MODE"
	EnvBackupKeep           = "VIGIL_BACKUP_KEEP"
	EnvBackupIfNoSpace      = "VIGIL_BACKUP_IF_NO_SPACE"
	EnvRestartOnFailure     = "VIGIL_RESTART_ON_FAILURE"
	EnvRestartMax           = "VIGIL_RESTART_MAX"
	EnvListen               = "VIGIL_LISTEN"
)

// Settings declares every variable once, in the order `vigil config` prints them (cosmovisor's
// order first, then the variables vigil added). Load, the file's unknown-key check,
// Config.Sources, the value rules of Validate and Describe all walk this table; the README's
// "Settings" table is checked against it by a test.
var Settings = []Setting{
	text(EnvHome, "required", "node home, an absolute path holding cosmovisor/ and data/",
		func(c *Config) *string { return &c.Home }).rule(checkHome),
	text(EnvName, "required", "binary name inside every bin/",
		func(c *Config) *string { return &c.Name }).rule(checkName),
	flag(EnvAllowDownload, false, "download a missing upgrade binary from the plan's info",
		func(c *Config) *bool { return &c.AllowDownload }),
	flag(EnvMustHaveChecksum, false, "refuse download URLs without a checksum",
		func(c *Config) *bool { return &c.MustHaveChecksum }),
	flag(EnvRestartAfterUpgrade, true, "start the new binary after an upgrade; false exits 0 after the switch",
		func(c *Config) *bool { return &c.RestartAfterUpgrade }),
	duration(EnvRestartDelay, 0, zeroAllowed, "pause after the node stopped, before backup and switch",
		func(c *Config) *time.Duration { return &c.RestartDelay }),
	duration(EnvShutdownGrace, 30*time.Second, zeroMeansDefault, "time between SIGTERM and SIGKILL; 0 means the default",
		func(c *Config) *time.Duration { return &c.ShutdownGrace }),
	duration(EnvPollInterval, 300*time.Millisecond, mustBePositive, "poll period when inotify cannot be used",
		func(c *Config) *time.Duration { return &c.PollInterval }),
	flag(EnvSkipBackup, false, "skip the backup of data/ before an upgrade",
		func(c *Config) *bool { return &c.SkipBackup }),
	bind(EnvBackupDir, "$DAEMON_HOME", "where backups go; absolute",
		func(c *Config) *string { return &c.BackupDir },
		func(c *Config) string { return c.Home }, parseString, identity).rule(checkBackupDir),
	count(EnvPreupgradeMaxRetries, 0, "extra attempts of pre-upgrade after exit 31",
		func(c *Config) *int { return &c.PreupgradeMaxRetries }),
	flag(EnvDisableLogs, false, "no vigil log output",
		func(c *Config) *bool { return &c.DisableLogs }),
	flag(EnvColorLogs, true, "colour the level, only on a terminal",
		func(c *Config) *bool { return &c.ColorLogs }),
	timeFormatSetting(),
	text(EnvCustomPreupgrade, "none", "script under $DAEMON_HOME/cosmovisor run before the switch",
		func(c *Config) *string { return &c.CustomPreupgrade }).rule(checkCustomPreupgrade),
	flag(EnvDisableRecase, false, "keep upgrade names' case for directory names",
		func(c *Config) *bool { return &c.DisableRecase }),
	choice(EnvLogFormat, "text", `"text" or "json"`, "log format",
		func(c *Config) *string { return &c.LogFormat }, "text", "json"),
	bind(EnvLogLevel, "info", "lowest level logged",
		func(c *Config) *slog.Level { return &c.LogLevel },
		fixed(slog.LevelInfo), parseLogLevel, showLogLevel),
	choice(EnvWatchMode, "auto", `"auto" or "poll"`, "auto uses inotify when it works; poll forces the stat poller",
		func(c *Config) *string { return &c.WatchMode }, "auto", "poll"),
	duration(EnvSafetyPollInterval, 30*time.Second, mustBePositive, "safety-net stat poll while inotify is used",
		func(c *Config) *time.Duration { return &c.SafetyPollInterval }),
	duration(EnvDownloadMaxTime, 15*time.Minute, mustBePositive, "no new download attempt starts after this",
		func(c *Config) *time.Duration { return &c.DownloadMaxTime }),
	text(EnvRPCAddress, "rpc.laddr of $DAEMON_HOME/config/config.toml", "the node's CometBFT RPC",
		func(c *Config) *string { return &c.RPCAddress }).rule(checkRPCAddress),
	duration(EnvPrefetchInterval, 30*time.Second, zeroAllowed, "how often the node is asked for its scheduled plan; 0 = no prefetch",
		func(c *Config) *time.Duration { return &c.PrefetchInterval }),
	choice(EnvBackupMode, "auto", `"auto", "reflink", "hardlink" or "copy"`, "how data/ is backed up",
		func(c *Config) *string { return &c.BackupMode }, "auto", "reflink", "hardlink", "copy"),
	count(EnvBackupKeep, 2, "backups kept; 0 = keep all",
		func(c *Config) *int { return &c.BackupKeep }),
	choice(EnvBackupIfNoSpace, "fail", `"fail" or "skip"`, "what to do when the backup will not fit",
		func(c *Config) *string { return &c.BackupIfNoSpace }, "fail", "skip"),
	flag(EnvRestartOnFailure, false, "restart the node after a crash",
		func(c *Config) *bool { return &c.RestartOnFailure }),
	count(EnvRestartMax, 5, "crashes in a row before vigil gives up; 0 = no limit",
		func(c *Config) *int { return &c.RestartMax }),
	bind(EnvListen, "off", "HTTP listener for metrics and health; a bare port binds 127.0.0.1",
		func(c *Config) *string { return &c.Listen },
		fixed(""), parseListen, identity).rule(checkListen),
}

// ignoredFileKeys are keys cosmovisor writes that vigil has no use for; they are accepted so
// that a config.toml written by `cosmovisor init` (v1.7) loads unchanged.
var ignoredFileKeys = map[string]bool{
	"daemon_grpc_address": true,
}

// Setting is one variable: its name, its default (as documented and as the typed value), how a
// raw value is parsed into Config, how `vigil config` prints it, and its value rule.
type Setting struct {
	Name    string // environment variable; the TOML key is the same name in lower case
	Default string // the default as the README's "Settings" table shows it
	Doc     string // one line

	emptyIsValue bool                                     // set but empty is a value, not "unset"
	load         func(c *Config, raw any, o origin) error // raw nil: not set, the default is stored
	show         func(c *Config) string                   // the value as `vigil config` prints it
	file         func(c *Config) any                      // the value as File writes it; Load reads it back
	check        func(c *Config) error                    // value rule without filesystem access; may be nil
}

func (s Setting) rule(check func(*Config) error) Setting {
	s.check = check
	return s
}

// Names lists the variables in the order `vigil config` prints them.
func Names() []string {
	names := make([]string, len(Settings))
	for i, s := range Settings {
		names[i] = s.Name
	}
	return names
}

// parser turns a raw value (a string from the environment, any TOML value from the file) into T.
type parser[T any] func(raw any, o origin) (T, error)

// bind declares a setting stored in the field at returns. The default is stored first, so a value
// that fails to parse leaves the default in place; def may read settings declared earlier.
func bind[T any](name, shown, doc string, at func(*Config) *T, def func(*Config) T, parse parser[T], show func(T) string) Setting {
	return Setting{
		Name: name, Default: shown, Doc: doc,
		load: func(c *Config, raw any, o origin) error {
			p := at(c)
			*p = def(c)
			if raw == nil {
				return nil
			}
			v, err := parse(raw, o)
			if err == nil {
				*p = v
			}
			return err
		},
		show: func(c *Config) string { return show(*at(c)) },
		file: func(c *Config) any { return fileValue(*at(c)) },
	}
}

// fileValue is a typed value as File writes it: durations and log levels as the strings the
// environment takes ("300ms", "info"), not cosmovisor's integer nanoseconds; the rest as is.
func fileValue(v any) any {
	switch v := v.(type) {
	case time.Duration:
		return shortDuration(v)
	case slog.Level:
		return showLogLevel(v)
	default:
		return v
	}
}

func fixed[T any](v T) func(*Config) T { return func(*Config) T { return v } }

func identity(s string) string { return s }

func text(name, shown, doc string, at func(*Config) *string) Setting {
	return bind(name, shown, doc, at, fixed(""), parseString, identity)
}

func flag(name string, def bool, doc string, at func(*Config) *bool) Setting {
	return bind(name, strconv.FormatBool(def), doc, at, fixed(def), parseBool, strconv.FormatBool)
}

func count(name string, def int, doc string, at func(*Config) *int) Setting {
	return bind(name, strconv.Itoa(def), doc, at, fixed(def), parseCount, strconv.Itoa)
}

func duration(name string, def time.Duration, rule zeroRule, doc string, at func(*Config) *time.Duration) Setting {
	parse := func(raw any, o origin) (time.Duration, error) {
		d, err := parseDuration(raw, o, rule)
		if err == nil && d == 0 && rule == zeroMeansDefault {
			d = def
		}
		return d, err
	}
	return bind(name, shortDuration(def), doc, at, fixed(def), parse, time.Duration.String)
}

// choice is a string out of allowed (matched case-insensitively); want describes them in errors.
func choice(name, def, want, doc string, at func(*Config) *string, allowed ...string) Setting {
	parse := func(raw any, o origin) (string, error) {
		s, err := parseString(raw, o)
		if err != nil {
			return "", err
		}
		if v := strings.ToLower(s); slices.Contains(allowed, v) {
			return v, nil
		}
		return "", fmt.Errorf("%s %q must be %s, got %q", o.kind(), o.name, want, s)
	}
	return bind(name, def, doc, at, fixed(def), parse, identity)
}

// shortDuration writes a default the way the README does: "15m", not "15m0s"; "0", not "0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if s == "0s" {
		return "0"
	}
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// timeFormats maps the COSMOVISOR_TIMEFORMAT_LOGS names to Go layouts ("" = no timestamp).
var timeFormats = map[string]string{
	"layout":      time.Layout,
	"ansic":       time.ANSIC,
	"unixdate":    time.UnixDate,
	"rubydate":    time.RubyDate,
	"rfc822":      time.RFC822,
	"rfc822z":     time.RFC822Z,
	"rfc850":      time.RFC850,
	"rfc1123":     time.RFC1123,
	"rfc1123z":    time.RFC1123Z,
	"rfc3339":     time.RFC3339,
	"rfc3339nano": time.RFC3339Nano,
	"kitchen":     time.Kitchen,
	"":            "",
}

// timeFormatSetting: set but empty means "no timestamps"; `vigil config` prints the home.
// JSON logs use RFC 3339 (nano) while this is at its default (see cmd/vigil's logger).
func timeFormatSetting() Setting {
	parse := func(raw any, o origin) (string, error) {
		s, err := parseString(raw, o)
		if err != nil {
			return "", err
		}
		name := strings.ToLower(s)
		if _, known := timeFormats[name]; !known {
			return "", fmt.Errorf("%s %q must have a timeformat value (\"layout|ansic|unixdate|rubydate|rfc822|rfc822z|rfc850|rfc1123|rfc1123z|rfc3339|rfc3339nano|kitchen\"), got %q", o.kind(), o.name, s)
		}
		return name, nil
	}
	s := bind(EnvTimeFormat, "kitchen (rfc3339nano for JSON logs)", "log time format; set but empty = no time",
		func(c *Config) *string { return &c.TimeFormat }, fixed("kitchen"), parse,
		func(name string) string { return timeFormats[name] })
	s.emptyIsValue = true
	return s
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func parseLogLevel(raw any, o origin) (slog.Level, error) {
	s, err := parseString(raw, o)
	if err != nil {
		return 0, err
	}
	lvl, known := logLevels[strings.ToLower(s)]
	if !known {
		return 0, fmt.Errorf("%s %q must be one of \"debug\", \"info\", \"warn\", \"error\", got %q", o.kind(), o.name, s)
	}
	return lvl, nil
}

func showLogLevel(l slog.Level) string { return strings.ToLower(l.String()) }

// parseListen binds a bare port or ":port" to loopback: metrics are opt-in and
// stay on the machine unless the operator names another host.
func parseListen(raw any, o origin) (string, error) {
	s, err := parseString(raw, o)
	if err != nil {
		return "", err
	}
	if isPort(s) {
		return "127.0.0.1:" + s, nil
	}
	if p, ok := strings.CutPrefix(s, ":"); ok && isPort(p) {
		return "127.0.0.1:" + p, nil
	}
	return s, nil
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535 && s != "" && s[0] != '+' && s[0] != '-'
}

// The value rules below need no filesystem access; Load and Validate both apply them, so a
// Config built by hand gets the same checks.

func checkHome(c *Config) error {
	switch {
	case c.Home == "":
		return errors.New("DAEMON_HOME is not set")
	case !filepath.IsAbs(c.Home):
		return errors.New("DAEMON_HOME must be an absolute path")
	}
	return nil
}

func checkName(c *Config) error {
	switch {
	case c.Name == "":
		return errors.New("DAEMON_NAME is not set")
	case strings.ContainsRune(c.Name, '/') || c.Name == "." || c.Name == "..":
		// The name is joined into bin/ paths; it must not point anywhere else.
		return fmt.Errorf("DAEMON_NAME must be a file name (no \"/\", not \".\" or \"..\"), got %q", c.Name)
	}
	return nil
}

// checkBackupDir: the backup dir defaults to the home; when the home itself is wrong, one error
// says it all.
func checkBackupDir(c *Config) error {
	if c.SkipBackup || (checkHome(c) != nil && c.BackupDir == c.Home) {
		return nil
	}
	switch {
	case c.BackupDir == "":
		return errors.New("DAEMON_DATA_BACKUP_DIR must not be empty")
	case !filepath.IsAbs(c.BackupDir):
		return fmt.Errorf("DAEMON_DATA_BACKUP_DIR must be an absolute path, got %q", c.BackupDir)
	}
	return nil
}

func checkCustomPreupgrade(c *Config) error {
	if c.CustomPreupgrade != "" && !filepath.IsLocal(c.CustomPreupgrade) {
		return fmt.Errorf("COSMOVISOR_CUSTOM_PREUPGRADE must be a relative path inside $DAEMON_HOME/cosmovisor, got %q", c.CustomPreupgrade)
	}
	return nil
}

func checkRPCAddress(c *Config) error {
	if c.RPCAddress == "" {
		return nil
	}
	u, err := url.Parse(c.RPCAddress)
	if err != nil || (u.Host == "" && u.Path == "") || !slices.Contains([]string{"tcp", "http", "https", "unix"}, u.Scheme) {
		return fmt.Errorf("VIGIL_RPC_ADDRESS must be a tcp://, http://, https:// or unix:// address, got %q", c.RPCAddress)
	}
	return nil
}

func checkListen(c *Config) error {
	if c.Listen == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || !isPort(port) {
		return fmt.Errorf("VIGIL_LISTEN must be a port or host:port, got %q", c.Listen)
	}
	return nil
}
