package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
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

// configVars lists every configurable variable in the order `vigil config` prints them:
// cosmovisor's order first, then the variables vigil added.
var configVars = []string{
	EnvHome, EnvName, EnvAllowDownload, EnvMustHaveChecksum, EnvRestartAfterUpgrade,
	EnvRestartDelay, EnvShutdownGrace, EnvPollInterval, EnvSkipBackup, EnvBackupDir,
	EnvPreupgradeMaxRetries, EnvDisableLogs, EnvColorLogs, EnvTimeFormat, EnvCustomPreupgrade,
	EnvDisableRecase, EnvLogFormat, EnvLogLevel, EnvWatchMode, EnvSafetyPollInterval,
	EnvDownloadMaxTime, EnvRPCAddress, EnvPrefetchInterval,
	EnvBackupMode, EnvBackupKeep, EnvBackupIfNoSpace,
	EnvRestartOnFailure, EnvRestartMax, EnvListen,
}

// ignoredFileKeys are keys cosmovisor writes that vigil has no use for; they are accepted so
// that a config.toml written by `cosmovisor init` (v1.7) loads unchanged.
var ignoredFileKeys = map[string]bool{
	"daemon_grpc_address": true,
}

// Documented defaults.
const (
	defaultPollInterval       = 300 * time.Millisecond
	defaultShutdownGrace      = 30 * time.Second
	defaultSafetyPollInterval = 30 * time.Second
	defaultTimeFormat         = "kitchen"
	defaultLogFormat          = "text"
	defaultWatchMode          = "auto"
	defaultDownloadMaxTime    = 15 * time.Minute
	defaultPrefetchInterval   = 30 * time.Second
	defaultBackupMode         = "auto"
	defaultBackupKeep         = 2
	defaultBackupIfNoSpace    = "fail"
	defaultRestartMax         = 5
)

// Values of Config.Sources.
const (
	SourceEnv     = "env"
	SourceFile    = "file"
	SourceDefault = "default"
)

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

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Config is the complete vigil configuration. It is a plain value: build it with LoadConfig
// (or directly in tests) and pass it down; nothing below cmd/ reads the environment.
type Config struct {
	Home                 string        // DAEMON_HOME, required, absolute
	Name                 string        // DAEMON_NAME, required
	AllowDownload        bool          // DAEMON_ALLOW_DOWNLOAD_BINARIES, false
	MustHaveChecksum     bool          // DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM, false
	RestartAfterUpgrade  bool          // DAEMON_RESTART_AFTER_UPGRADE, true
	RestartDelay         time.Duration // DAEMON_RESTART_DELAY, 0
	ShutdownGrace        time.Duration // DAEMON_SHUTDOWN_GRACE, 30s; 0 also means 30s (cosmovisor: 0 = immediate SIGKILL)
	PollInterval         time.Duration // DAEMON_POLL_INTERVAL, 300ms
	BackupDir            string        // DAEMON_DATA_BACKUP_DIR, default Home
	SkipBackup           bool          // UNSAFE_SKIP_BACKUP, false
	PreupgradeMaxRetries int           // DAEMON_PREUPGRADE_MAX_RETRIES, 0; negative rejected
	DisableLogs          bool          // COSMOVISOR_DISABLE_LOGS, false
	ColorLogs            bool          // COSMOVISOR_COLOR_LOGS, true; colour is used only on a terminal
	TimeFormat           string        // COSMOVISOR_TIMEFORMAT_LOGS name, "kitchen"; "" = no timestamps
	CustomPreupgrade     string        // COSMOVISOR_CUSTOM_PREUPGRADE, relative to Root(), ""
	DisableRecase        bool          // COSMOVISOR_DISABLE_RECASE, false
	LogFormat            string        // COSMOVISOR_LOG_FORMAT text|json, "text"
	LogLevel             slog.Level    // COSMOVISOR_LOG_LEVEL debug|info|warn|error, info
	WatchMode            string        // VIGIL_WATCH_MODE auto|poll, "auto"
	SafetyPollInterval   time.Duration // VIGIL_SAFETY_POLL_INTERVAL, 30s
	DownloadMaxTime      time.Duration // DAEMON_DOWNLOAD_MAX_TIME, 15m: retries of one download stop after this
	RPCAddress           string        // VIGIL_RPC_ADDRESS, "" = rpc.laddr of $DAEMON_HOME/config/config.toml
	PrefetchInterval     time.Duration // VIGIL_PREFETCH_INTERVAL, 30s; 0 = no prefetch (only with downloads on)
	BackupMode           string        // VIGIL_BACKUP_MODE auto|reflink|hardlink|copy, "auto"
	BackupKeep           int           // VIGIL_BACKUP_KEEP, 2; 0 = keep all
	BackupIfNoSpace      string        // VIGIL_BACKUP_IF_NO_SPACE fail|skip, "fail"
	RestartOnFailure     bool          // VIGIL_RESTART_ON_FAILURE, false
	RestartMax           int           // VIGIL_RESTART_MAX, 5 crashes in a row before vigil gives up
	Listen               string        // VIGIL_LISTEN, "" = off; "9102" or ":9102" binds 127.0.0.1

	Sources    map[string]string // env var name -> SourceEnv | SourceFile | SourceDefault
	ConfigFile string            // path of the TOML file used, "" if none
}

// LoadConfig builds the Config from the environment (getenv returns value and whether set) and an
// optional TOML file (path "" = none). Environment wins over the file for every variable; documented
// defaults fill the rest, in file mode too. An empty environment value counts as unset, except for
// COSMOVISOR_TIMEFORMAT_LOGS where set-but-empty means "no timestamps".
// All problems are reported together (errors.Join), each naming its variable or file key.
// It parses only; it does not touch the filesystem except reading the file.
func LoadConfig(getenv func(string) (string, bool), file string) (Config, error) {
	l := &loader{getenv: getenv, sources: make(map[string]string, len(configVars))}
	if file != "" {
		m, err := readConfigFile(file)
		if err != nil {
			return Config{}, err
		}
		l.file = m
		var unknown []string
		known := make(map[string]bool, len(configVars))
		for _, name := range configVars {
			known[strings.ToLower(name)] = true
		}
		for k := range m {
			if !known[k] && !ignoredFileKeys[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			l.errs = append(l.errs, fmt.Errorf("config file %s: unknown key %q", file, k))
		}
	}

	c := Config{ConfigFile: file}
	c.Home = l.str(EnvHome, "")
	c.Name = l.str(EnvName, "")
	c.AllowDownload = l.boolean(EnvAllowDownload, false)
	c.MustHaveChecksum = l.boolean(EnvMustHaveChecksum, false)
	c.RestartAfterUpgrade = l.boolean(EnvRestartAfterUpgrade, true)
	c.RestartDelay = l.duration(EnvRestartDelay, 0, zeroAllowed)
	c.ShutdownGrace = l.duration(EnvShutdownGrace, defaultShutdownGrace, zeroMeansDefault)
	c.PollInterval = l.duration(EnvPollInterval, defaultPollInterval, mustBePositive)
	c.SkipBackup = l.boolean(EnvSkipBackup, false)
	c.BackupDir = l.str(EnvBackupDir, c.Home)
	c.PreupgradeMaxRetries = l.integer(EnvPreupgradeMaxRetries, 0)
	c.DisableLogs = l.boolean(EnvDisableLogs, false)
	c.ColorLogs = l.boolean(EnvColorLogs, true)
	c.TimeFormat = l.timeFormat()
	c.CustomPreupgrade = l.str(EnvCustomPreupgrade, "")
	c.DisableRecase = l.boolean(EnvDisableRecase, false)
	c.LogFormat = l.enum(EnvLogFormat, defaultLogFormat, `"text" or "json"`, "text", "json")
	c.LogLevel = l.logLevel()
	c.WatchMode = l.enum(EnvWatchMode, defaultWatchMode, `"auto" or "poll"`, "auto", "poll")
	c.SafetyPollInterval = l.duration(EnvSafetyPollInterval, defaultSafetyPollInterval, mustBePositive)
	c.DownloadMaxTime = l.duration(EnvDownloadMaxTime, defaultDownloadMaxTime, mustBePositive)
	c.RPCAddress = l.str(EnvRPCAddress, "")
	c.PrefetchInterval = l.duration(EnvPrefetchInterval, defaultPrefetchInterval, zeroAllowed)
	c.BackupMode = l.enum(EnvBackupMode, defaultBackupMode, `"auto", "reflink", "hardlink" or "copy"`, "auto", "reflink", "hardlink", "copy")
	c.BackupKeep = l.integer(EnvBackupKeep, defaultBackupKeep)
	c.BackupIfNoSpace = l.enum(EnvBackupIfNoSpace, defaultBackupIfNoSpace, `"fail" or "skip"`, "fail", "skip")
	c.RestartOnFailure = l.boolean(EnvRestartOnFailure, false)
	c.RestartMax = l.integer(EnvRestartMax, defaultRestartMax)
	c.Listen = listenAddr(l.str(EnvListen, ""))
	c.Sources = l.sources

	l.errs = append(l.errs, c.checkValues()...)
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return c, nil
}

func readConfigFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// cosmovisor's text, spacing included.
			return nil, fmt.Errorf("config not found: at %s : %w", path, err)
		}
		return nil, fmt.Errorf("read config file: %w", err)
	}
	m := map[string]any{}
	if err := toml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse config file %s: %w", path, err)
	}
	return m, nil
}

// origin says where a raw value came from, so that an error names what the operator has to fix:
// the env var, or the key in the file.
type origin struct {
	name     string // env var name, or lowercase file key
	fromFile bool
}

func (o origin) kind() string {
	if o.fromFile {
		return "config key"
	}
	return "env variable"
}

type loader struct {
	getenv  func(string) (string, bool)
	file    map[string]any
	sources map[string]string
	errs    []error
}

// lookup finds the raw value of a variable: environment first, then the file. ok is false when
// neither has it, and the caller applies the default. Empty strings count as unset unless
// emptyIsValue, in the file as in the environment.
func (l *loader) lookup(name string, emptyIsValue bool) (raw any, o origin, ok bool) {
	if v, set := l.getenv(name); set && (v != "" || emptyIsValue) {
		l.sources[name] = SourceEnv
		return v, origin{name: name}, true
	}
	key := strings.ToLower(name)
	if v, has := l.file[key]; has {
		if s, isStr := v.(string); !isStr || s != "" || emptyIsValue {
			l.sources[name] = SourceFile
			return v, origin{name: key, fromFile: true}, true
		}
	}
	l.sources[name] = SourceDefault
	return nil, origin{}, false
}

func (l *loader) fail(err error) { l.errs = append(l.errs, err) }

func (l *loader) typeError(o origin, want string, raw any) {
	l.fail(fmt.Errorf("config key %q must be %s, got %T %v", o.name, want, raw, raw))
}

func (l *loader) str(name, def string) string {
	raw, o, ok := l.lookup(name, false)
	if !ok {
		return def
	}
	s, isStr := raw.(string)
	if !isStr {
		l.typeError(o, "a string", raw)
		return def
	}
	return s
}

func (l *loader) boolean(name string, def bool) bool {
	raw, o, ok := l.lookup(name, false)
	if !ok {
		return def
	}
	switch v := raw.(type) {
	case bool:
		return v
	case string:
		// Strings are accepted in the file too: viper (cosmovisor) decodes weakly typed input.
		switch p := strings.ToLower(v); p {
		case "true":
			return true
		case "false":
			return false
		default:
			l.fail(fmt.Errorf("%s %q must have a boolean value (\"true\" or \"false\"), got %q", o.kind(), o.name, p))
			return def
		}
	default:
		l.typeError(o, "a boolean", raw)
		return def
	}
}

type zeroRule int

const (
	zeroAllowed      zeroRule = iota // 0 is a valid value (no delay)
	zeroMeansDefault                 // 0 selects the default (vigil never kills without a grace period)
	mustBePositive                   // 0 is an error (a ticker cannot run with period 0)
)

func (l *loader) duration(name string, def time.Duration, rule zeroRule) time.Duration {
	raw, o, ok := l.lookup(name, false)
	if !ok {
		return def
	}
	var d time.Duration
	switch v := raw.(type) {
	case int64:
		// cosmovisor's `init` writes durations as integer nanoseconds.
		d = time.Duration(v)
	case string:
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			l.fail(fmt.Errorf("invalid: %s: could not parse '%s' into a duration: %w", o.name, v, err))
			return def
		}
	default:
		l.typeError(o, `a duration string ("300ms") or integer nanoseconds`, raw)
		return def
	}
	switch {
	case rule == mustBePositive && d <= 0:
		l.fail(fmt.Errorf("invalid: %s: must be greater than 0", o.name))
		return def
	case d < 0:
		l.fail(fmt.Errorf("invalid: %s: must not be negative", o.name))
		return def
	case d == 0 && rule == zeroMeansDefault:
		return def
	}
	return d
}

func (l *loader) integer(name string, def int) int {
	raw, o, ok := l.lookup(name, false)
	if !ok {
		return def
	}
	var n int
	switch v := raw.(type) {
	case int64:
		if v > math.MaxInt || v < math.MinInt {
			l.fail(fmt.Errorf("%s is out of range: %d", o.name, v))
			return 0
		}
		n = int(v)
	case string:
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			l.fail(fmt.Errorf("%s could not be parsed to int: %w", o.name, err))
			return 0
		}
	default:
		l.typeError(o, "an integer", raw)
		return 0
	}
	if n < 0 {
		// cosmovisor accepts a negative count and then fails the first pre-upgrade attempt.
		l.fail(fmt.Errorf("%s must not be negative, got %d", o.name, n))
		return 0
	}
	return n
}

func (l *loader) timeFormat() string {
	raw, o, ok := l.lookup(EnvTimeFormat, true)
	if !ok {
		return defaultTimeFormat
	}
	s, isStr := raw.(string)
	if !isStr {
		l.typeError(o, "a string", raw)
		return defaultTimeFormat
	}
	name := strings.ToLower(s)
	if _, known := timeFormats[name]; !known {
		l.fail(fmt.Errorf("%s %q must have a timeformat value (\"layout|ansic|unixdate|rubydate|rfc822|rfc822z|rfc850|rfc1123|rfc1123z|rfc3339|rfc3339nano|kitchen\"), got %q", o.kind(), o.name, s))
		return defaultTimeFormat
	}
	return name
}

func (l *loader) enum(name, def, want string, allowed ...string) string {
	raw, o, ok := l.lookup(name, false)
	if !ok {
		return def
	}
	s, isStr := raw.(string)
	if !isStr {
		l.typeError(o, "a string", raw)
		return def
	}
	v := strings.ToLower(s)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	l.fail(fmt.Errorf("%s %q must be %s, got %q", o.kind(), o.name, want, s))
	return def
}

func (l *loader) logLevel() slog.Level {
	raw, o, ok := l.lookup(EnvLogLevel, false)
	if !ok {
		return slog.LevelInfo
	}
	s, isStr := raw.(string)
	if !isStr {
		l.typeError(o, "a string", raw)
		return slog.LevelInfo
	}
	lvl, known := logLevels[strings.ToLower(s)]
	if !known {
		l.fail(fmt.Errorf("%s %q must be one of \"debug\", \"info\", \"warn\", \"error\", got %q", o.kind(), o.name, s))
		return slog.LevelInfo
	}
	return lvl
}

// checkValues holds the rules that need no filesystem access. LoadConfig and Validate both apply
// them, so a Config built by hand gets the same checks.
func (c Config) checkValues() []error {
	var errs []error
	homeOK := false
	switch {
	case c.Home == "":
		errs = append(errs, errors.New("DAEMON_HOME is not set"))
	case !filepath.IsAbs(c.Home):
		errs = append(errs, errors.New("DAEMON_HOME must be an absolute path"))
	default:
		homeOK = true
	}
	switch {
	case c.Name == "":
		errs = append(errs, errors.New("DAEMON_NAME is not set"))
	case strings.ContainsRune(c.Name, '/') || c.Name == "." || c.Name == "..":
		// The name is joined into bin/ paths; it must not point anywhere else.
		errs = append(errs, fmt.Errorf("DAEMON_NAME must be a file name (no \"/\", not \".\" or \"..\"), got %q", c.Name))
	}
	// The backup dir defaults to the home: when the home itself is wrong, one error says it all.
	if !c.SkipBackup && (homeOK || c.BackupDir != c.Home) {
		switch {
		case c.BackupDir == "":
			errs = append(errs, errors.New("DAEMON_DATA_BACKUP_DIR must not be empty"))
		case !filepath.IsAbs(c.BackupDir):
			errs = append(errs, fmt.Errorf("DAEMON_DATA_BACKUP_DIR must be an absolute path, got %q", c.BackupDir))
		}
	}
	if c.RPCAddress != "" {
		u, err := url.Parse(c.RPCAddress)
		if err != nil || (u.Host == "" && u.Path == "") || !slices.Contains([]string{"tcp", "http", "https", "unix"}, u.Scheme) {
			errs = append(errs, fmt.Errorf("VIGIL_RPC_ADDRESS must be a tcp://, http://, https:// or unix:// address, got %q", c.RPCAddress))
		}
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || !isPort(port) {
			errs = append(errs, fmt.Errorf("VIGIL_LISTEN must be a port or host:port, got %q", c.Listen))
		}
	}
	if c.CustomPreupgrade != "" && !filepath.IsLocal(c.CustomPreupgrade) {
		errs = append(errs, fmt.Errorf("COSMOVISOR_CUSTOM_PREUPGRADE must be a relative path inside $DAEMON_HOME/cosmovisor, got %q", c.CustomPreupgrade))
	}
	return errs
}

// listenAddr binds a bare port or ":port" to loopback: metrics are opt-in and
// stay on the machine unless the operator names another host.
func listenAddr(s string) string {
	if isPort(s) {
		return "127.0.0.1:" + s
	}
	if p, ok := strings.CutPrefix(s, ":"); ok && isPort(p) {
		return "127.0.0.1:" + p
	}
	return s
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535 && s != "" && s[0] != '+' && s[0] != '-'
}

// initHint tells the operator how the missing directories come into existence.
const initHint = `run "vigil init <path-to-daemon-binary>" or start the node once to create it`

// Validate checks the filesystem-level rules, after the value rules LoadConfig applies.
// forRun adds the checks `run` needs: Root() and DataDir() are directories.
// Backup dir checks are skipped when SkipBackup. All problems are reported together.
func (c Config) Validate(forRun bool) error {
	errs := c.checkValues()
	if !c.SkipBackup && filepath.IsAbs(c.BackupDir) {
		fi, err := os.Stat(c.BackupDir)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("DAEMON_DATA_BACKUP_DIR: %q must be a valid directory: %w", c.BackupDir, err))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("DAEMON_DATA_BACKUP_DIR: %q must be a valid directory", c.BackupDir))
		}
	}
	if forRun && filepath.IsAbs(c.Home) {
		root := c.Root()
		fi, err := os.Stat(root)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("cannot stat home dir: %w; %s", err, initHint))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("%s is not a directory", root))
		}
		data := c.DataDir()
		fi, err = os.Stat(data)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("invalid path: %s must be an existing directory: %w; %s", data, err, initHint))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("invalid path: %s must be an existing directory; it is not a directory", data))
		}
	}
	return errors.Join(errs...)
}

// TimeLayout is the Go time layout for TimeFormat; "" means log lines carry no timestamp.
func (c Config) TimeLayout() string {
	return timeFormats[c.TimeFormat]
}

// Root is $DAEMON_HOME/cosmovisor.
func (c Config) Root() string { return c.layout().Root() }

// UpgradesDir is Root()/upgrades.
func (c Config) UpgradesDir() string { return c.layout().UpgradesDir() }

// GenesisBin is Root()/genesis/bin/<name>.
func (c Config) GenesisBin() string { return c.layout().Bin(c.layout().GenesisDir()) }

// DataDir is $DAEMON_HOME/data.
func (c Config) DataDir() string { return c.layout().DataDir() }

// UpgradeInfoFile is DataDir()/upgrade-info.json, the file the node writes at an upgrade height.
func (c Config) UpgradeInfoFile() string { return c.layout().UpgradeInfoFile() }

// value renders one variable the way cosmovisor's `config` does (durations with
// Duration.String, the time format as its layout).
func (c Config) value(name string) string {
	switch name {
	case EnvHome:
		return c.Home
	case EnvName:
		return c.Name
	case EnvAllowDownload:
		return strconv.FormatBool(c.AllowDownload)
	case EnvMustHaveChecksum:
		return strconv.FormatBool(c.MustHaveChecksum)
	case EnvRestartAfterUpgrade:
		return strconv.FormatBool(c.RestartAfterUpgrade)
	case EnvRestartDelay:
		return c.RestartDelay.String()
	case EnvShutdownGrace:
		return c.ShutdownGrace.String()
	case EnvPollInterval:
		return c.PollInterval.String()
	case EnvSkipBackup:
		return strconv.FormatBool(c.SkipBackup)
	case EnvBackupDir:
		return c.BackupDir
	case EnvPreupgradeMaxRetries:
		return strconv.Itoa(c.PreupgradeMaxRetries)
	case EnvDisableLogs:
		return strconv.FormatBool(c.DisableLogs)
	case EnvColorLogs:
		return strconv.FormatBool(c.ColorLogs)
	case EnvTimeFormat:
		return c.TimeLayout()
	case EnvCustomPreupgrade:
		return c.CustomPreupgrade
	case EnvDisableRecase:
		return strconv.FormatBool(c.DisableRecase)
	case EnvLogFormat:
		return c.LogFormat
	case EnvLogLevel:
		return strings.ToLower(c.LogLevel.String())
	case EnvWatchMode:
		return c.WatchMode
	case EnvSafetyPollInterval:
		return c.SafetyPollInterval.String()
	case EnvDownloadMaxTime:
		return c.DownloadMaxTime.String()
	case EnvRPCAddress:
		return c.RPCAddress
	case EnvPrefetchInterval:
		return c.PrefetchInterval.String()
	case EnvBackupMode:
		return c.BackupMode
	case EnvBackupKeep:
		return strconv.Itoa(c.BackupKeep)
	case EnvBackupIfNoSpace:
		return c.BackupIfNoSpace
	case EnvRestartOnFailure:
		return strconv.FormatBool(c.RestartOnFailure)
	case EnvRestartMax:
		return strconv.Itoa(c.RestartMax)
	case EnvListen:
		return c.Listen
	}
	return ""
}

// Describe renders the `vigil config` output: cosmovisor's layout (§2.4), with the source of each
// value appended and the config file among the derived values.
func (c Config) Describe() string {
	var b strings.Builder
	b.WriteString("Configurable Values:\n")
	for _, name := range configVars {
		fmt.Fprintf(&b, "  %s: %s", name, c.value(name))
		if src := c.Sources[name]; src != "" {
			fmt.Fprintf(&b, "  (%s)", src)
		}
		b.WriteByte('\n')
	}
	cfgFile := c.ConfigFile
	if cfgFile == "" {
		cfgFile = "(none)"
	}
	b.WriteString("Derived Values:\n")
	for _, d := range []struct{ label, value string }{
		{"Root Dir", c.Root()},
		{"Upgrade Dir", c.UpgradesDir()},
		{"Genesis Bin", c.GenesisBin()},
		{"Monitored File", c.UpgradeInfoFile()},
		{"Data Backup Dir", c.BackupDir},
		{"Config File", cfgFile},
	} {
		fmt.Fprintf(&b, "  %15s: %s\n", d.label, d.value)
	}
	return b.String()
}

const configFlag = "cosmovisor-config"

// ExtractConfigFlag removes the first `--cosmovisor-config <path>`, `--cosmovisor-config=<path>`
// or the single-dash forms (flag name matched case-insensitively) from run's args and returns the
// path and the remaining args, which go to the node untouched. A flag without a value is an error.
// args is not modified.
func ExtractConfigFlag(args []string) (path string, rest []string, err error) {
	for i, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			if name, ok = strings.CutPrefix(a, "-"); !ok {
				continue
			}
		}
		name, value, hasValue := strings.Cut(name, "=")
		if !strings.EqualFold(name, configFlag) {
			continue
		}
		rest = make([]string, 0, len(args))
		rest = append(rest, args[:i]...)
		next := i + 1
		if !hasValue {
			if next >= len(args) {
				return "", nil, errors.New("--cosmovisor-config requires an argument")
			}
			value = args[next]
			next++
		}
		if value == "" {
			return "", nil, errors.New("--cosmovisor-config requires an argument")
		}
		rest = append(rest, args[next:]...)
		return value, rest, nil
	}
	return "", append(make([]string, 0, len(args)), args...), nil
}
