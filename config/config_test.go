package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// envOf turns a map into Load's getenv, so no test touches the process environment.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// errList flattens an errors.Join result.
func errList(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func minimalEnv() map[string]string {
	return map[string]string{EnvHome: "/h", EnvName: "appd"}
}

// defaultConfig is what the documentation promises for home /h and name appd.
func defaultConfig() Config {
	return Config{
		Home:                "/h",
		Name:                "appd",
		RestartAfterUpgrade: true,
		ShutdownGrace:       30 * time.Second,
		PollInterval:        300 * time.Millisecond,
		BackupDir:           "/h",
		ColorLogs:           true,
		TimeFormat:          "kitchen",
		LogFormat:           "text",
		LogLevel:            slog.LevelInfo,
		WatchMode:           "auto",
		SafetyPollInterval:  30 * time.Second,
		DownloadMaxTime:     15 * time.Minute,
		PrefetchInterval:    30 * time.Second,
		BackupMode:          "auto",
		BackupKeep:          2,
		BackupIfNoSpace:     "fail",
		RestartMax:          5,
	}
}

// withoutMeta drops the fields that say where values came from, to compare values only.
func withoutMeta(c Config) Config {
	c.Sources = nil
	c.ConfigFile = ""
	return c
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := Load(envOf(minimalEnv()), "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := withoutMeta(c), defaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if c.ConfigFile != "" {
		t.Errorf("ConfigFile = %q, want empty", c.ConfigFile)
	}
	if c.TimeLayout() != time.Kitchen {
		t.Errorf("TimeLayout = %q, want kitchen", c.TimeLayout())
	}
	for _, name := range Names() {
		want := SourceDefault
		if name == EnvHome || name == EnvName {
			want = SourceEnv
		}
		if got := c.Sources[name]; got != want {
			t.Errorf("Sources[%s] = %q, want %q", name, got, want)
		}
	}
}

func TestLoadConfigEnvValues(t *testing.T) {
	tests := []struct {
		name, value string
		wantSource  string // "" means SourceEnv
		mutate      func(*Config)
	}{
		{EnvAllowDownload, "TRUE", "", func(c *Config) { c.AllowDownload = true }},
		{EnvMustHaveChecksum, "true", "", func(c *Config) { c.MustHaveChecksum = true }},
		{EnvRestartAfterUpgrade, "faLSe", "", func(c *Config) { c.RestartAfterUpgrade = false }},
		{EnvRestartAfterUpgrade, "", SourceDefault, func(c *Config) {}},
		{EnvRestartDelay, "5s", "", func(c *Config) { c.RestartDelay = 5 * time.Second }},
		{EnvRestartDelay, "0", "", func(c *Config) {}},
		{EnvShutdownGrace, "2m", "", func(c *Config) { c.ShutdownGrace = 2 * time.Minute }},
		{EnvShutdownGrace, "0s", "", func(c *Config) { c.ShutdownGrace = 30 * time.Second }},
		{EnvShutdownGrace, "0", "", func(c *Config) { c.ShutdownGrace = 30 * time.Second }},
		{EnvPollInterval, "1s", "", func(c *Config) { c.PollInterval = time.Second }},
		{EnvSkipBackup, "true", "", func(c *Config) { c.SkipBackup = true }},
		{EnvBackupDir, "/backups", "", func(c *Config) { c.BackupDir = "/backups" }},
		{EnvBackupDir, "", SourceDefault, func(c *Config) {}},
		{EnvPreupgradeMaxRetries, "3", "", func(c *Config) { c.PreupgradeMaxRetries = 3 }},
		{EnvDisableLogs, "true", "", func(c *Config) { c.DisableLogs = true }},
		{EnvColorLogs, "false", "", func(c *Config) { c.ColorLogs = false }},
		{EnvTimeFormat, "rfc3339", "", func(c *Config) { c.TimeFormat = "rfc3339" }},
		{EnvTimeFormat, "", "", func(c *Config) { c.TimeFormat = "" }},
		{EnvCustomPreupgrade, "scripts/pre.sh", "", func(c *Config) { c.CustomPreupgrade = "scripts/pre.sh" }},
		{EnvDisableRecase, "true", "", func(c *Config) { c.DisableRecase = true }},
		{EnvLogFormat, "JSON", "", func(c *Config) { c.LogFormat = "json" }},
		{EnvLogLevel, "debug", "", func(c *Config) { c.LogLevel = slog.LevelDebug }},
		{EnvLogLevel, "Warn", "", func(c *Config) { c.LogLevel = slog.LevelWarn }},
		{EnvLogLevel, "error", "", func(c *Config) { c.LogLevel = slog.LevelError }},
		{EnvWatchMode, "poll", "", func(c *Config) { c.WatchMode = "poll" }},
		{EnvSafetyPollInterval, "5s", "", func(c *Config) { c.SafetyPollInterval = 5 * time.Second }},
		{EnvDownloadMaxTime, "1h", "", func(c *Config) { c.DownloadMaxTime = time.Hour }},
		{EnvRPCAddress, "http://127.0.0.1:26657", "", func(c *Config) { c.RPCAddress = "http://127.0.0.1:26657" }},
		{EnvPrefetchInterval, "0", "", func(c *Config) { c.PrefetchInterval = 0 }},
		{EnvBackupMode, "Hardlink", "", func(c *Config) { c.BackupMode = "hardlink" }},
		{EnvBackupKeep, "0", "", func(c *Config) { c.BackupKeep = 0 }},
		{EnvBackupIfNoSpace, "skip", "", func(c *Config) { c.BackupIfNoSpace = "skip" }},
		{EnvRestartOnFailure, "true", "", func(c *Config) { c.RestartOnFailure = true }},
		{EnvRestartMax, "0", "", func(c *Config) { c.RestartMax = 0 }},
		{EnvListen, "9102", "", func(c *Config) { c.Listen = "127.0.0.1:9102" }},
		{EnvListen, ":9102", "", func(c *Config) { c.Listen = "127.0.0.1:9102" }},
		{EnvListen, "0.0.0.0:9102", "", func(c *Config) { c.Listen = "0.0.0.0:9102" }},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			env := minimalEnv()
			env[tt.name] = tt.value
			c, err := Load(envOf(env), "")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := defaultConfig()
			tt.mutate(&want)
			if got := withoutMeta(c); !reflect.DeepEqual(got, want) {
				t.Errorf("\n got %+v\nwant %+v", got, want)
			}
			wantSource := tt.wantSource
			if wantSource == "" {
				wantSource = SourceEnv
			}
			if got := c.Sources[tt.name]; got != wantSource {
				t.Errorf("Sources[%s] = %q, want %q", tt.name, got, wantSource)
			}
		})
	}
}

func TestTimeLayout(t *testing.T) {
	want := map[string]string{
		"layout": time.Layout, "ansic": time.ANSIC, "unixdate": time.UnixDate, "rubydate": time.RubyDate,
		"rfc822": time.RFC822, "rfc822z": time.RFC822Z, "rfc850": time.RFC850, "rfc1123": time.RFC1123,
		"rfc1123z": time.RFC1123Z, "rfc3339": time.RFC3339, "rfc3339nano": time.RFC3339Nano,
		"kitchen": time.Kitchen, "": "",
	}
	for name, layout := range want {
		env := minimalEnv()
		env[EnvTimeFormat] = name
		c, err := Load(envOf(env), "")
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if c.TimeLayout() != layout {
			t.Errorf("%q: TimeLayout = %q, want %q", name, c.TimeLayout(), layout)
		}
	}
}

func TestLoadConfigBadValue(t *testing.T) {
	boolVars := []string{EnvAllowDownload, EnvMustHaveChecksum, EnvRestartAfterUpgrade, EnvSkipBackup,
		EnvDisableLogs, EnvColorLogs, EnvDisableRecase}
	type bad struct{ name, value, want string }
	tests := []bad{
		{EnvHome, "", "DAEMON_HOME is not set"},
		{EnvHome, "relative/home", "DAEMON_HOME must be an absolute path"},
		{EnvName, "", "DAEMON_NAME is not set"},
		{EnvName, "bin/appd", "DAEMON_NAME must be a file name"},
		{EnvName, ".", "DAEMON_NAME must be a file name"},
		{EnvName, "..", "DAEMON_NAME must be a file name"},
		{EnvRestartDelay, "600", "invalid: DAEMON_RESTART_DELAY: could not parse '600' into a duration: "},
		{EnvRestartDelay, "-1s", "invalid: DAEMON_RESTART_DELAY: must not be negative"},
		{EnvShutdownGrace, "soon", "invalid: DAEMON_SHUTDOWN_GRACE: could not parse 'soon' into a duration"},
		{EnvShutdownGrace, "-5s", "invalid: DAEMON_SHUTDOWN_GRACE: must not be negative"},
		{EnvPollInterval, "0", "invalid: DAEMON_POLL_INTERVAL: must be greater than 0"},
		{EnvPollInterval, "-3m", "invalid: DAEMON_POLL_INTERVAL: must be greater than 0"},
		{EnvPollInterval, "5", "invalid: DAEMON_POLL_INTERVAL: could not parse '5' into a duration"},
		{EnvSafetyPollInterval, "0s", "invalid: VIGIL_SAFETY_POLL_INTERVAL: must be greater than 0"},
		{EnvSafetyPollInterval, "x", "invalid: VIGIL_SAFETY_POLL_INTERVAL: could not parse 'x'"},
		{EnvBackupDir, "backups", `DAEMON_DATA_BACKUP_DIR must be an absolute path, got "backups"`},
		{EnvDownloadMaxTime, "0", "invalid: DAEMON_DOWNLOAD_MAX_TIME: must be greater than 0"},
		{EnvBackupMode, "zfs", `env variable "VIGIL_BACKUP_MODE" must be "auto", "reflink", "hardlink" or "copy", got "zfs"`},
		{EnvBackupKeep, "-1", "VIGIL_BACKUP_KEEP must not be negative"},
		{EnvBackupIfNoSpace, "pray", `must be "fail" or "skip"`},
		{EnvRPCAddress, "127.0.0.1:26657", `VIGIL_RPC_ADDRESS must be a tcp://, http://, https:// or unix:// address, got "127.0.0.1:26657"`},
		{EnvListen, "localhost", `VIGIL_LISTEN must be a port or host:port, got "localhost"`},
		{EnvListen, "127.0.0.1:http", `VIGIL_LISTEN must be a port or host:port, got "127.0.0.1:http"`},
		{EnvPreupgradeMaxRetries, "three", "DAEMON_PREUPGRADE_MAX_RETRIES could not be parsed to int: "},
		{EnvPreupgradeMaxRetries, "-1", "DAEMON_PREUPGRADE_MAX_RETRIES must not be negative"},
		{EnvTimeFormat, "iso", `env variable "COSMOVISOR_TIMEFORMAT_LOGS" must have a timeformat value ("layout|ansic|unixdate|rubydate|rfc822|rfc822z|rfc850|rfc1123|rfc1123z|rfc3339|rfc3339nano|kitchen"), got "iso"`},
		{EnvCustomPreupgrade, "/etc/pre.sh", "COSMOVISOR_CUSTOM_PREUPGRADE must be a relative path inside"},
		{EnvCustomPreupgrade, "../pre.sh", "COSMOVISOR_CUSTOM_PREUPGRADE must be a relative path inside"},
		{EnvCustomPreupgrade, "scripts/../../pre.sh", "COSMOVISOR_CUSTOM_PREUPGRADE must be a relative path inside"},
		{EnvLogFormat, "xml", `env variable "COSMOVISOR_LOG_FORMAT" must be "text" or "json", got "xml"`},
		{EnvLogLevel, "trace", `env variable "COSMOVISOR_LOG_LEVEL" must be one of`},
		{EnvWatchMode, "inotify", `env variable "VIGIL_WATCH_MODE" must be "auto" or "poll", got "inotify"`},
	}
	for _, name := range boolVars {
		tests = append(tests,
			bad{name, "1", `env variable "` + name + `" must have a boolean value ("true" or "false"), got "1"`},
			bad{name, "YES", `env variable "` + name + `" must have a boolean value ("true" or "false"), got "yes"`})
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			env := minimalEnv()
			env[tt.name] = tt.value
			c, err := Load(envOf(env), "")
			errs := errList(err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(errs), err)
			}
			msg := errs[0].Error()
			if !strings.Contains(msg, tt.name) {
				t.Errorf("error %q does not name %s", msg, tt.name)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("config returned with an error: %+v", c)
			}
		})
	}
}

func TestLoadConfigAllBadAtOnce(t *testing.T) {
	env := map[string]string{
		EnvHome:                 "rel",
		EnvName:                 "a/b",
		EnvAllowDownload:        "x",
		EnvMustHaveChecksum:     "x",
		EnvRestartAfterUpgrade:  "x",
		EnvRestartDelay:         "x",
		EnvShutdownGrace:        "x",
		EnvPollInterval:         "0",
		EnvSkipBackup:           "x",
		EnvBackupDir:            "relbackup",
		EnvPreupgradeMaxRetries: "x",
		EnvDisableLogs:          "x",
		EnvColorLogs:            "x",
		EnvTimeFormat:           "x",
		EnvCustomPreupgrade:     "/x",
		EnvDisableRecase:        "x",
		EnvLogFormat:            "x",
		EnvLogLevel:             "x",
		EnvWatchMode:            "x",
		EnvSafetyPollInterval:   "x",
		EnvDownloadMaxTime:      "x",
		EnvRPCAddress:           "x",
		EnvPrefetchInterval:     "x",
		EnvBackupMode:           "x",
		EnvBackupKeep:           "x",
		EnvBackupIfNoSpace:      "x",
		EnvRestartOnFailure:     "x",
		EnvRestartMax:           "x",
		EnvListen:               "x",
	}
	if len(env) != len(Settings) {
		t.Fatalf("test covers %d variables, config has %d", len(env), len(Settings))
	}
	_, err := Load(envOf(env), "")
	errs := errList(err)
	if len(errs) != len(Settings) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(Settings), err)
	}
	for _, name := range Names() {
		n := 0
		for _, e := range errs {
			// Match the quoted or delimited name, so DAEMON_POLL_INTERVAL does not also count
			// VIGIL_SAFETY_POLL_INTERVAL.
			msg := e.Error()
			if strings.HasPrefix(msg, name) || strings.Contains(msg, `"`+name+`"`) || strings.Contains(msg, " "+name+":") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s named in %d errors, want 1:\n%v", name, n, err)
		}
	}
}

func TestLoadConfigNothingSet(t *testing.T) {
	_, err := Load(envOf(nil), "")
	errs := errList(err)
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	slices.Sort(msgs)
	want := []string{"DAEMON_HOME is not set", "DAEMON_NAME is not set"}
	if !slices.Equal(msgs, want) {
		t.Errorf("errors = %q, want %q", msgs, want)
	}
}

const fullFile = `
daemon_home = '/h'
daemon_name = 'appd'
daemon_allow_download_binaries = true
daemon_download_must_have_checksum = true
daemon_restart_after_upgrade = false
daemon_restart_delay = '5s'
daemon_shutdown_grace = '1m'
daemon_poll_interval = 1000000000
unsafe_skip_backup = true
daemon_data_backup_dir = '/backups'
daemon_preupgrade_max_retries = 2
cosmovisor_disable_logs = true
cosmovisor_color_logs = false
cosmovisor_timeformat_logs = 'rfc3339'
cosmovisor_custom_preupgrade = 'pre.sh'
cosmovisor_disable_recase = true
cosmovisor_log_format = 'json'
cosmovisor_log_level = 'warn'
vigil_watch_mode = 'poll'
vigil_safety_poll_interval = '10s'
daemon_download_max_time = '1h'
vigil_rpc_address = 'unix:///h/rpc.sock'
vigil_prefetch_interval = '1m'
vigil_backup_mode = 'copy'
vigil_backup_keep = 3
vigil_backup_if_no_space = 'skip'
vigil_restart_on_failure = true
vigil_restart_max = 7
vigil_listen = '127.0.0.1:9102'
`

var fullEnv = map[string]string{
	EnvHome:                 "/h",
	EnvName:                 "appd",
	EnvAllowDownload:        "true",
	EnvMustHaveChecksum:     "true",
	EnvRestartAfterUpgrade:  "false",
	EnvRestartDelay:         "5s",
	EnvShutdownGrace:        "1m",
	EnvPollInterval:         "1s",
	EnvSkipBackup:           "true",
	EnvBackupDir:            "/backups",
	EnvPreupgradeMaxRetries: "2",
	EnvDisableLogs:          "true",
	EnvColorLogs:            "false",
	EnvTimeFormat:           "rfc3339",
	EnvCustomPreupgrade:     "pre.sh",
	EnvDisableRecase:        "true",
	EnvLogFormat:            "json",
	EnvLogLevel:             "warn",
	EnvWatchMode:            "poll",
	EnvSafetyPollInterval:   "10s",
	EnvDownloadMaxTime:      "1h",
	EnvRPCAddress:           "unix:///h/rpc.sock",
	EnvPrefetchInterval:     "1m",
	EnvBackupMode:           "copy",
	EnvBackupKeep:           "3",
	EnvBackupIfNoSpace:      "skip",
	EnvRestartOnFailure:     "true",
	EnvRestartMax:           "7",
	EnvListen:               "127.0.0.1:9102",
}

func TestLoadConfigFileEqualsEnv(t *testing.T) {
	path := writeFile(t, fullFile)
	fromFile, err := Load(envOf(nil), path)
	if err != nil {
		t.Fatalf("file: %v", err)
	}
	fromEnv, err := Load(envOf(fullEnv), "")
	if err != nil {
		t.Fatalf("env: %v", err)
	}
	if !reflect.DeepEqual(withoutMeta(fromFile), withoutMeta(fromEnv)) {
		t.Errorf("file and env differ:\nfile %+v\n env %+v", withoutMeta(fromFile), withoutMeta(fromEnv))
	}
	// Every value must differ from its default, or the comparison above proves nothing for it.
	def := reflect.ValueOf(defaultConfig())
	got := reflect.ValueOf(withoutMeta(fromEnv))
	for i := range def.NumField() {
		f := def.Type().Field(i)
		if f.Name == "Sources" || f.Name == "ConfigFile" || f.Name == "Home" || f.Name == "Name" {
			continue
		}
		if reflect.DeepEqual(def.Field(i).Interface(), got.Field(i).Interface()) {
			t.Errorf("field %s has its default value in the test data", f.Name)
		}
	}
	if fromFile.ConfigFile != path {
		t.Errorf("ConfigFile = %q, want %q", fromFile.ConfigFile, path)
	}
	for _, name := range Names() {
		if fromFile.Sources[name] != SourceFile {
			t.Errorf("file Sources[%s] = %q", name, fromFile.Sources[name])
		}
		if fromEnv.Sources[name] != SourceEnv {
			t.Errorf("env Sources[%s] = %q", name, fromEnv.Sources[name])
		}
	}
}

func TestLoadConfigFileMissingKeysGetDefaults(t *testing.T) {
	path := writeFile(t, "daemon_home = '/h'\ndaemon_name = 'appd'\n")
	c, err := Load(envOf(nil), path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := withoutMeta(c), defaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	for _, name := range Names() {
		want := SourceDefault
		if name == EnvHome || name == EnvName {
			want = SourceFile
		}
		if c.Sources[name] != want {
			t.Errorf("Sources[%s] = %q, want %q", name, c.Sources[name], want)
		}
	}
}

// The file `cosmovisor init` v1.7 writes must load unchanged, and with vigil's defaults.
func TestLoadConfigCosmovisorInitFile(t *testing.T) {
	path := writeFile(t, `daemon_home = '/h'
daemon_name = 'appd'
daemon_allow_download_binaries = false
daemon_download_must_have_checksum = false
daemon_restart_after_upgrade = true
daemon_restart_delay = 0
daemon_shutdown_grace = 0
daemon_poll_interval = 300000000
unsafe_skip_backup = false
daemon_data_backup_dir = '/h'
daemon_preupgrade_max_retries = 0
cosmovisor_disable_logs = false
cosmovisor_color_logs = true
cosmovisor_timeformat_logs = 'kitchen'
cosmovisor_custom_preupgrade = ''
cosmovisor_disable_recase = false
daemon_grpc_address = 'localhost:9090'
`)
	c, err := Load(envOf(nil), path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := withoutMeta(c), defaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadConfigEnvOverridesFile(t *testing.T) {
	path := writeFile(t, `daemon_home = '/h'
daemon_name = 'filed'
daemon_poll_interval = '1s'
daemon_shutdown_grace = 'not a duration'
cosmovisor_timeformat_logs = 'rfc3339'
daemon_restart_after_upgrade = false
`)
	env := map[string]string{
		EnvName:                "envd",  // present in the file
		EnvRestartDelay:        "7s",    // absent from the file
		EnvShutdownGrace:       "10s",   // the bad file value is never consulted
		EnvTimeFormat:          "",      // set but empty: no timestamps, overrides the file
		EnvRestartAfterUpgrade: "",      // empty counts as unset: the file value stays
		EnvWatchMode:           "POLL",  // absent from the file
		EnvLogLevel:            "debug", // absent from the file
	}
	c, err := Load(envOf(env), path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := defaultConfig()
	want.Name = "envd"
	want.RestartDelay = 7 * time.Second
	want.ShutdownGrace = 10 * time.Second
	want.PollInterval = time.Second
	want.TimeFormat = ""
	want.RestartAfterUpgrade = false
	want.WatchMode = "poll"
	want.LogLevel = slog.LevelDebug
	if got := withoutMeta(c); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	wantSources := map[string]string{
		EnvHome: SourceFile, EnvName: SourceEnv, EnvRestartDelay: SourceEnv, EnvShutdownGrace: SourceEnv,
		EnvPollInterval: SourceFile, EnvTimeFormat: SourceEnv, EnvRestartAfterUpgrade: SourceFile,
		EnvWatchMode: SourceEnv, EnvLogLevel: SourceEnv, EnvColorLogs: SourceDefault,
	}
	for name, src := range wantSources {
		if c.Sources[name] != src {
			t.Errorf("Sources[%s] = %q, want %q", name, c.Sources[name], src)
		}
	}
}

func TestLoadConfigFileDurations(t *testing.T) {
	tests := []struct {
		line    string
		get     func(Config) time.Duration
		want    time.Duration
		wantErr string
	}{
		{"daemon_restart_delay = 0", func(c Config) time.Duration { return c.RestartDelay }, 0, ""},
		{"daemon_restart_delay = 2500000000", func(c Config) time.Duration { return c.RestartDelay }, 2500 * time.Millisecond, ""},
		{"daemon_restart_delay = -1", nil, 0, "invalid: daemon_restart_delay: must not be negative"},
		{"daemon_shutdown_grace = 0", func(c Config) time.Duration { return c.ShutdownGrace }, 30 * time.Second, ""},
		{"daemon_shutdown_grace = 5000000000", func(c Config) time.Duration { return c.ShutdownGrace }, 5 * time.Second, ""},
		{"daemon_shutdown_grace = '0s'", func(c Config) time.Duration { return c.ShutdownGrace }, 30 * time.Second, ""},
		{"daemon_poll_interval = 300000000000", func(c Config) time.Duration { return c.PollInterval }, 5 * time.Minute, ""},
		{"daemon_poll_interval = '30s'", func(c Config) time.Duration { return c.PollInterval }, 30 * time.Second, ""},
		{"daemon_poll_interval = 0", nil, 0, "invalid: daemon_poll_interval: must be greater than 0"},
		{"daemon_poll_interval = '300'", nil, 0, "invalid: daemon_poll_interval: could not parse '300' into a duration"},
		{"daemon_poll_interval = 1.5", nil, 0, `config key "daemon_poll_interval" must be a duration string`},
		{"vigil_safety_poll_interval = 60000000000", func(c Config) time.Duration { return c.SafetyPollInterval }, time.Minute, ""},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			path := writeFile(t, "daemon_home = '/h'\ndaemon_name = 'appd'\n"+tt.line+"\n")
			c, err := Load(envOf(nil), path)
			if tt.wantErr != "" {
				errs := errList(err)
				if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tt.get(c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadConfigFileBadValues(t *testing.T) {
	tests := []struct{ line, key, want string }{
		{"daemon_allow_download_binaries = 1", "daemon_allow_download_binaries", "must be a boolean"},
		{"daemon_allow_download_binaries = 'yes'", "daemon_allow_download_binaries", `config key "daemon_allow_download_binaries" must have a boolean value ("true" or "false"), got "yes"`},
		{"daemon_data_backup_dir = 5", "daemon_data_backup_dir", "must be a string"},
		{"daemon_preupgrade_max_retries = -1", "daemon_preupgrade_max_retries", "must not be negative"},
		{"daemon_preupgrade_max_retries = 'many'", "daemon_preupgrade_max_retries", "could not be parsed to int"},
		{"daemon_preupgrade_max_retries = true", "daemon_preupgrade_max_retries", "must be an integer"},
		{"cosmovisor_timeformat_logs = 'iso'", "cosmovisor_timeformat_logs", "must have a timeformat value"},
		{"cosmovisor_log_format = 'xml'", "cosmovisor_log_format", `must be "text" or "json"`},
		{"cosmovisor_log_level = 3", "cosmovisor_log_level", "must be a string"},
		{"vigil_watch_mode = 'inotify'", "vigil_watch_mode", `must be "auto" or "poll"`},
		{"daemon_data_backup_dir = 'rel'", "DAEMON_DATA_BACKUP_DIR", "must be an absolute path"},
		{"unknown_thing = 1", "unknown_thing", "unknown key"},
		{"[daemon]\nname = 'x'", `"daemon"`, "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			path := writeFile(t, "daemon_home = '/h'\ndaemon_name = 'appd'\n"+tt.line+"\n")
			_, err := Load(envOf(nil), path)
			errs := errList(err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(errs), err)
			}
			msg := errs[0].Error()
			if !strings.Contains(msg, tt.key) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q and %q", msg, tt.key, tt.want)
			}
		})
	}
}

func TestLoadConfigFileUnknownKeysAllReported(t *testing.T) {
	path := writeFile(t, "daemon_home = '/h'\ndaemon_name = 'appd'\nzeta = 1\nalpha = 2\ndaemon_grpc_address = 'localhost:9090'\ndaemon_poll_interval = 0\n")
	_, err := Load(envOf(nil), path)
	errs := errList(err)
	if len(errs) != 3 {
		t.Fatalf("got %d errors, want 3 (two unknown keys, one bad interval): %v", len(errs), err)
	}
	if !strings.Contains(errs[0].Error(), `"alpha"`) || !strings.Contains(errs[1].Error(), `"zeta"`) {
		t.Errorf("unknown keys not reported in order: %v", err)
	}
	if strings.Contains(err.Error(), "daemon_grpc_address") {
		t.Errorf("daemon_grpc_address must be accepted: %v", err)
	}
}

func TestLoadConfigFileEmptyStringsAreDefaults(t *testing.T) {
	path := writeFile(t, "daemon_home = '/h'\ndaemon_name = 'appd'\ndaemon_data_backup_dir = ''\ncosmovisor_log_format = ''\ncosmovisor_timeformat_logs = ''\n")
	c, err := Load(envOf(nil), path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := defaultConfig()
	want.TimeFormat = "" // an explicit empty time format means no timestamps, as in the env
	if got := withoutMeta(c); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(envOf(minimalEnv()), missing)
	if err == nil || !strings.HasPrefix(err.Error(), "config not found: at "+missing+" : ") {
		t.Errorf("missing file: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error does not wrap ErrNotExist: %v", err)
	}

	bad := writeFile(t, "daemon_home = \n")
	_, err = Load(envOf(minimalEnv()), bad)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("invalid TOML: %v", err)
	}
}

// validHome makes a home with cosmovisor/ and data/ and returns a Config for it.
func validHome(t *testing.T) Config {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{"cosmovisor", "data"} {
		if err := os.Mkdir(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := defaultConfig()
	c.Home = home
	c.BackupDir = home
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, c *Config)
		forRun  bool
		wantErr []string // one substring per expected error; nil = valid
	}{
		{"valid for run", func(t *testing.T, c *Config) {}, true, nil},
		{"relative home", func(t *testing.T, c *Config) { c.Home, c.BackupDir = "rel", "rel" }, true,
			[]string{"DAEMON_HOME must be an absolute path"}},
		{"missing cosmovisor dir", func(t *testing.T, c *Config) { rm(t, c.Root()) }, true,
			[]string{"cannot stat home dir: "}},
		{"missing cosmovisor dir, not run", func(t *testing.T, c *Config) { rm(t, c.Root()) }, false, nil},
		{"cosmovisor is a file", func(t *testing.T, c *Config) { rm(t, c.Root()); touch(t, c.Root()) }, true,
			[]string{"cosmovisor is not a directory"}},
		{"missing data dir", func(t *testing.T, c *Config) { rm(t, c.DataDir()) }, true,
			[]string{"invalid path: " + "%DATA%" + " must be an existing directory: "}},
		{"data is a file", func(t *testing.T, c *Config) { rm(t, c.DataDir()); touch(t, c.DataDir()) }, true,
			[]string{"must be an existing directory"}},
		{"missing data dir, not run", func(t *testing.T, c *Config) { rm(t, c.DataDir()) }, false, nil},
		{"backup dir missing", func(t *testing.T, c *Config) { c.BackupDir = filepath.Join(c.Home, "nope") }, false,
			[]string{`DAEMON_DATA_BACKUP_DIR: "%HOME%/nope" must be a valid directory: `}},
		{"backup dir is a file", func(t *testing.T, c *Config) {
			c.BackupDir = filepath.Join(c.Home, "f")
			touch(t, c.BackupDir)
		}, false, []string{"must be a valid directory"}},
		{"backup dir relative", func(t *testing.T, c *Config) { c.BackupDir = "backups" }, false,
			[]string{"DAEMON_DATA_BACKUP_DIR must be an absolute path"}},
		{"backup dir empty", func(t *testing.T, c *Config) { c.BackupDir = "" }, false,
			[]string{"DAEMON_DATA_BACKUP_DIR must not be empty"}},
		{"skip backup skips missing backup dir", func(t *testing.T, c *Config) {
			c.SkipBackup = true
			c.BackupDir = filepath.Join(c.Home, "nope")
		}, true, nil},
		{"skip backup skips relative backup dir", func(t *testing.T, c *Config) {
			c.SkipBackup = true
			c.BackupDir = "backups"
		}, true, nil},
		{"everything wrong", func(t *testing.T, c *Config) {
			rm(t, c.Root())
			rm(t, c.DataDir())
			c.Name = ""
			c.BackupDir = filepath.Join(c.Home, "nope")
			c.CustomPreupgrade = "../x"
		}, true, []string{"DAEMON_NAME is not set", "COSMOVISOR_CUSTOM_PREUPGRADE", "must be a valid directory", "cannot stat home dir", "invalid path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validHome(t)
			tt.setup(t, &c)
			err := c.Validate(tt.forRun)
			errs := errList(err)
			if len(errs) != len(tt.wantErr) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tt.wantErr), err)
			}
			for i, want := range tt.wantErr {
				want = strings.ReplaceAll(want, "%DATA%", c.DataDir())
				want = strings.ReplaceAll(want, "%HOME%", c.Home)
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], want)
				}
			}
		})
	}
}

func TestValidateDataDirHint(t *testing.T) {
	c := validHome(t)
	rm(t, c.DataDir())
	err := c.Validate(true)
	if err == nil || !strings.Contains(err.Error(), "vigil init") || !strings.Contains(err.Error(), "start the node once") {
		t.Errorf("missing data dir error does not say how to fix it: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error does not wrap the stat error: %v", err)
	}
}

func rm(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDerivedPaths(t *testing.T) {
	c := Config{Home: "/h", Name: "appd"}
	for got, want := range map[string]string{
		c.Root():            "/h/cosmovisor",
		c.UpgradesDir():     "/h/cosmovisor/upgrades",
		c.GenesisBin():      "/h/cosmovisor/genesis/bin/appd",
		c.DataDir():         "/h/data",
		c.UpgradeInfoFile(): "/h/data/upgrade-info.json",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	env := minimalEnv()
	env[EnvLogLevel] = "warn"
	path := writeFile(t, "daemon_poll_interval = 1000000000\n")
	c, err := Load(envOf(env), path)
	if err != nil {
		t.Fatal(err)
	}
	want := `Configurable Values:
  DAEMON_HOME: /h  (env)
  DAEMON_NAME: appd  (env)
  DAEMON_ALLOW_DOWNLOAD_BINARIES: false  (default)
  DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM: false  (default)
  DAEMON_RESTART_AFTER_UPGRADE: true  (default)
  DAEMON_RESTART_DELAY: 0s  (default)
  DAEMON_SHUTDOWN_GRACE: 30s  (default)
  DAEMON_POLL_INTERVAL: 1s  (file)
  UNSAFE_SKIP_BACKUP: false  (default)
  DAEMON_DATA_BACKUP_DIR: /h  (default)
  DAEMON_PREUPGRADE_MAX_RETRIES: 0  (default)
  COSMOVISOR_DISABLE_LOGS: false  (default)
  COSMOVISOR_COLOR_LOGS: true  (default)
  COSMOVISOR_TIMEFORMAT_LOGS: 3:04PM  (default)
  COSMOVISOR_CUSTOM_PREUPGRADE:   (default)
  COSMOVISOR_DISABLE_RECASE: false  (default)
  COSMOVISOR_LOG_FORMAT: text  (default)
  COSMOVISOR_LOG_LEVEL: warn  (env)
  VIGIL_WATCH_MODE: auto  (default)
  VIGIL_SAFETY_POLL_INTERVAL: 30s  (default)
  DAEMON_DOWNLOAD_MAX_TIME: 15m0s  (default)
  VIGIL_RPC_ADDRESS:   (default)
  VIGIL_PREFETCH_INTERVAL: 30s  (default)
  VIGIL_BACKUP_MODE: auto  (default)
  VIGIL_BACKUP_KEEP: 2  (default)
  VIGIL_BACKUP_IF_NO_SPACE: fail  (default)
  VIGIL_RESTART_ON_FAILURE: false  (default)
  VIGIL_RESTART_MAX: 5  (default)
  VIGIL_LISTEN:   (default)
Derived Values:
         Root Dir: /h/cosmovisor
      Upgrade Dir: /h/cosmovisor/upgrades
      Genesis Bin: /h/cosmovisor/genesis/bin/appd
   Monitored File: /h/data/upgrade-info.json
  Data Backup Dir: /h
      Config File: ` + path + "\n"
	if got := c.Describe(); got != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", got, want)
	}
}

func TestDescribeEveryVariable(t *testing.T) {
	c, err := Load(envOf(fullEnv), "")
	if err != nil {
		t.Fatal(err)
	}
	out := c.Describe()
	for _, name := range Names() {
		line := "  " + name + ": " + c.value(name) + "  (env)\n"
		if !strings.Contains(out, line) {
			t.Errorf("missing line %q in:\n%s", line, out)
		}
		if c.value(name) == "" {
			t.Errorf("%s renders empty", name)
		}
	}
	if !strings.Contains(out, "      Config File: (none)\n") {
		t.Errorf("missing Config File (none):\n%s", out)
	}
	if !strings.Contains(out, "  Data Backup Dir: /backups\n") {
		t.Errorf("missing backup dir:\n%s", out)
	}
}

// File's output loads back, with an empty environment, into the same values, for every setting
// (fullEnv sets each to something other than its default) and for the defaults.
func TestFileRoundTrip(t *testing.T) {
	for name, env := range map[string]map[string]string{"every setting": fullEnv, "defaults": minimalEnv()} {
		t.Run(name, func(t *testing.T) {
			want, err := Load(envOf(env), "")
			if err != nil {
				t.Fatal(err)
			}
			b, err := want.File()
			if err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, string(b))
			got, err := Load(envOf(nil), path)
			if err != nil {
				t.Fatalf("Load of the written file: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(withoutMeta(got), withoutMeta(want)) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v\nfile:\n%s", withoutMeta(got), withoutMeta(want), b)
			}
			for _, n := range Names() {
				if name == "every setting" && got.Sources[n] != SourceFile {
					t.Errorf("%s is not in the file (source %q)", n, got.Sources[n])
				}
			}
		})
	}
}

func TestWriteFileNeverOverwrites(t *testing.T) {
	c, err := Load(envOf(minimalEnv()), "")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "daemon_name = 'mine'\n")
	wrote, err := c.WriteFile(path)
	if err != nil || wrote {
		t.Fatalf("WriteFile over an existing file = %v, %v; want false, nil", wrote, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "daemon_name = 'mine'\n" {
		t.Errorf("existing file changed:\n%s", b)
	}
	fresh := filepath.Join(t.TempDir(), FileName)
	if wrote, err := c.WriteFile(fresh); err != nil || !wrote {
		t.Fatalf("WriteFile on a free name = %v, %v", wrote, err)
	}
	if b, _ := os.ReadFile(fresh); !strings.Contains(string(b), "daemon_poll_interval = \"300ms\"\n") {
		t.Errorf("written file lacks cosmovisor's key with the default:\n%s", b)
	}
}
