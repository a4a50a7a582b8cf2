// Package config is vigil's configuration: the settings table (Settings), the loader that reads
// them from the environment and an optional TOML file into one plain Config, the value and
// filesystem rules (Validate), and the `vigil config` rendering (Describe). It does not read
// the process environment itself: Load is given getenv by the command.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/vigilhq/vigil/home"
)

// Values of Config.Sources.
const (
	SourceEnv     = "env"
	SourceFile    = "file"
	SourceDefault = "default"
)

// Config is the complete vigil configuration. It is a plain value: build it with Load (or
// directly in tests) and pass it down. Defaults, parsing and rules of each field are declared
// once, in Settings.
type Config struct {
	Home                 string        // DAEMON_HOME
	Name                 string        // DAEMON_NAME
	AllowDownload        bool          // DAEMON_ALLOW_DOWNLOAD_BINARIES
	MustHaveChecksum     bool          // DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM
	RestartAfterUpgrade  bool          // DAEMON_RESTART_AFTER_UPGRADE
	RestartDelay         time.Duration // DAEMON_RESTART_DELAY
	ShutdownGrace        time.Duration // DAEMON_SHUTDOWN_GRACE; 0 also means the default (cosmovisor: immediate SIGKILL)
	PollInterval         time.Duration // DAEMON_POLL_INTERVAL
	BackupDir            string        // DAEMON_DATA_BACKUP_DIR
	SkipBackup           bool          // UNSAFE_SKIP_BACKUP
	PreupgradeMaxRetries int           // DAEMON_PREUPGRADE_MAX_RETRIES
	DisableLogs          bool          // COSMOVISOR_DISABLE_LOGS
	ColorLogs            bool          // COSMOVISOR_COLOR_LOGS; colour is used only on a terminal
	TimeFormat           string        // COSMOVISOR_TIMEFORMAT_LOGS name; "" = no timestamps
	CustomPreupgrade     string        // COSMOVISOR_CUSTOM_PREUPGRADE, relative to Root()
	DisableRecase        bool          // COSMOVISOR_DISABLE_RECASE
	LogFormat            string        // COSMOVISOR_LOG_FORMAT text|json
	LogLevel             slog.Level    // COSMOVISOR_LOG_LEVEL
	WatchMode            string        // VIGIL_WATCH_MODE auto|poll
	SafetyPollInterval   time.Duration // VIGIL_SAFETY_POLL_INTERVAL
	DownloadMaxTime      time.Duration // DAEMON_DOWNLOAD_MAX_TIME
	RPCAddress           string        // VIGIL_RPC_ADDRESS; "" = rpc.laddr of the node's config.toml
	PrefetchInterval     time.Duration // VIGIL_PREFETCH_INTERVAL; 0 = no prefetch
	BackupMode           string        // VIGIL_BACKUP_MODE auto|reflink|hardlink|copy
	BackupKeep           int           // VIGIL_BACKUP_KEEP; 0 = keep all
	BackupIfNoSpace      string        // VIGIL_BACKUP_IF_NO_SPACE fail|skip
	RestartOnFailure     bool          // VIGIL_RESTART_ON_FAILURE
	RestartMax           int           // VIGIL_RESTART_MAX; 0 = no limit
	Listen               string        // VIGIL_LISTEN; "" = off

	Sources    map[string]string // env var name -> SourceEnv | SourceFile | SourceDefault
	ConfigFile string            // path of the TOML file used, "" if none
}

// Load builds the Config from the environment (getenv returns value and whether set) and an
// optional TOML file (path "" = none). Environment wins over the file for every variable;
// the declared defaults fill the rest, in file mode too. An empty value counts as unset, except
// for COSMOVISOR_TIMEFORMAT_LOGS where set-but-empty means "no timestamps".
// All problems are reported together (errors.Join), each naming its variable or file key.
// It parses only; it does not touch the filesystem except reading the file.
func Load(getenv func(string) (string, bool), file string) (Config, error) {
	l := &loader{getenv: getenv, sources: make(map[string]string, len(Settings))}
	var errs []error
	if file != "" {
		m, err := readFile(file)
		if err != nil {
			return Config{}, err
		}
		l.file = m
		errs = unknownKeys(file, m)
	}
	c := Config{ConfigFile: file}
	for _, s := range Settings {
		raw, o := l.lookup(s)
		if err := s.load(&c, raw, o); err != nil {
			errs = append(errs, err)
		}
	}
	c.Sources = l.sources
	errs = append(errs, c.checkValues()...)
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

func readFile(path string) (map[string]any, error) {
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

// unknownKeys reports, sorted, the file's keys that name no setting.
func unknownKeys(file string, m map[string]any) []error {
	known := make(map[string]bool, len(Settings))
	for _, s := range Settings {
		known[strings.ToLower(s.Name)] = true
	}
	var unknown []string
	for k := range m {
		if !known[k] && !ignoredFileKeys[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	var errs []error
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("config file %s: unknown key %q", file, k))
	}
	return errs
}

// checkValues applies the value rules of Settings, in table order.
func (c Config) checkValues() []error {
	var errs []error
	for _, s := range Settings {
		if s.check == nil {
			continue
		}
		if err := s.check(&c); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// InitHint tells the operator how the missing directories come into existence.
const InitHint = `run "vigil init <path-to-daemon-binary>" or start the node once to create it`

// Validate checks the filesystem-level rules, after the value rules Load applies.
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
			errs = append(errs, fmt.Errorf("cannot stat home dir: %w; %s", err, InitHint))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("%s is not a directory", root))
		}
		data := c.DataDir()
		fi, err = os.Stat(data)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("invalid path: %s must be an existing directory: %w; %s", data, err, InitHint))
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

// Layout is the cosmovisor folder layout of this home.
func (c Config) Layout() home.Layout {
	return home.Layout{Home: c.Home, Name: c.Name, Recase: !c.DisableRecase}
}

// Root is $DAEMON_HOME/cosmovisor.
func (c Config) Root() string { return c.Layout().Root() }

// UpgradesDir is Root()/upgrades.
func (c Config) UpgradesDir() string { return c.Layout().UpgradesDir() }

// GenesisBin is Root()/genesis/bin/<name>.
func (c Config) GenesisBin() string { return c.Layout().Bin(c.Layout().GenesisDir()) }

// DataDir is $DAEMON_HOME/data.
func (c Config) DataDir() string { return c.Layout().DataDir() }

// UpgradeInfoFile is DataDir()/upgrade-info.json, the file the node writes at an upgrade height.
func (c Config) UpgradeInfoFile() string { return c.Layout().UpgradeInfoFile() }

// value renders one variable the way cosmovisor's `config` does (durations with
// Duration.String, the time format as its layout).
func (c Config) value(name string) string {
	for _, s := range Settings {
		if s.Name == name {
			return s.show(&c)
		}
	}
	return ""
}

// Describe renders the `vigil config` output: cosmovisor's layout (§2.4), with the source of each
// value appended and the config file among the derived values.
func (c Config) Describe() string {
	var b strings.Builder
	b.WriteString("Configurable Values:\n")
	for _, s := range Settings {
		fmt.Fprintf(&b, "  %s: %s", s.Name, s.show(&c))
		if src := c.Sources[s.Name]; src != "" {
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

// LoadHome is Load for a home named on the command line (status, doctor):
// homeDir and name, when given, win over DAEMON_HOME and DAEMON_NAME. When no
// name is given anywhere, it is inferred from genesis/bin when that holds
// exactly one file.
func LoadHome(getenv func(string) (string, bool), homeDir, name, file string) (Config, error) {
	env := func(name string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			switch {
			case k == EnvHome && homeDir != "":
				return homeDir, true
			case k == EnvName && name != "":
				return name, true
			}
			return getenv(k)
		}
	}
	cfg, err := Load(env(name), file)
	if err == nil || name != "" {
		return cfg, err
	}
	if v, _ := getenv(EnvName); v != "" {
		return cfg, err
	}
	dir := homeDir
	if dir == "" {
		dir, _ = getenv(EnvHome)
	}
	if dir == "" {
		return cfg, err
	}
	inferred, ierr := home.Layout{Home: dir}.InferName()
	if ierr != nil {
		return cfg, fmt.Errorf("%w\n%s is not set and %w; pass --name", err, EnvName, ierr)
	}
	return Load(env(inferred), file)
}
