// Command fakeapp stands in for a Cosmos SDK node binary in vigil's end-to-end tests and
// benchmarks. It learns its "version" from where it is installed (the directory two levels above
// the executable: …/genesis/bin/app → "genesis", …/upgrades/v2/bin/app → "v2") and its behaviour
// from $DAEMON_HOME/fakeapp.json, a map version → behaviour. Everything it does is appended, one
// line per write, to $DAEMON_HOME/fakeapp.log so a test can assert on the order of events across
// several binaries.
//
// Subcommands: "pre-upgrade" (exits with the next code of the configured list), "version"
// (prints "fakeapp <version>"; with --long --output json, the SDK's JSON, and a warning on stderr), "__orphan-parent" and "__orphan" (internal, see leaveOrphans),
// "__migration" (internal, see migration);
// anything else runs the node.
//
// With "blocks" set the node keeps a real chain height, as an SDK app does: it holds
// $DAEMON_HOME/data/application.db open read-write with goleveldb (the exclusive LOCK included),
// commits one height per interval to key "s/latest" (a gogoproto Int64Value, as store/rootmulti
// writes it) and honours --halt-height the way SDK v0.45's BaseApp.Commit does: the check follows
// each commit and is >=, so a node started at or past its halt height commits one more block
// before it halts (the overshoot a test of vigil must be able to see). It logs "start height N"
// (the committed height it starts from), "commit N" per block and "halt at N"; the DB's LOCK held
// by another process fails the start with "db lock held" and status 1.
//
// Standard library and goleveldb only: it is built by the tests with `go build`, and must not
// depend on vigil.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
)

// halt describes the upgrade-info.json the node writes when it "reaches" the upgrade height.
type halt struct {
	Name    string  `json:"name"`
	Height  int64   `json:"height"`
	After   string  `json:"after"`   // duration after start; "" = immediately
	Write   string  `json:"write"`   // inplace (default) | rename | halves | raw
	Then    string  `json:"then"`    // stay (default) | exit
	Content *string `json:"content"` // written verbatim instead of the JSON when set (any write mode)
}

type behaviour struct {
	Halt         *halt    `json:"halt"`
	OnTerm       string   `json:"on_term"`    // exit (default) | ignore
	StopDelay    string   `json:"stop_delay"` // after SIGTERM, flush this long before exiting (a slow node)
	DBLock       bool     `json:"db_lock"`    // hold an flock on data/LOCK as LevelDB does; a second node fails
	TermExitCode int      `json:"term_exit_code"`
	ExitAfter    string   `json:"exit_after"`
	ExitCode     int      `json:"exit_code"`
	PreUpgrade   []int    `json:"pre_upgrade"` // default [1] = not implemented; -1 = SIGKILL itself
	Orphans      int      `json:"orphans"`     // at start, leave this many orphans (grandchildren whose parent exits)
	OrphanLife   string   `json:"orphan_life"` // how long each orphan lives once re-parented
	LogEnv       []string `json:"log_env"`     // at start, log "env NAME=value" or "env NAME unset" for each
	// Migration makes pre-upgrade run a "migration" child for this long and wait for it. The
	// migration stays in pre-upgrade's process group, ignores SIGTERM, and holds an flock on
	// data/MIGRATION.LOCK: a second one running at the same time logs "migration lock held" and
	// fails. It logs "migration start", "migration pid N" and "migration done".
	Migration string `json:"migration"`
	// Blocks is the block interval ("" = no blocks: no database, --halt-height ignored). See
	// the package doc and openChain.
	Blocks string `json:"blocks"`
	// HaltExitCode is the exit status on reaching --halt-height. The real simd v0.45 exits 130:
	// BaseApp.halt signals SIGINT to itself and the server exits 128+2.
	HaltExitCode int `json:"halt_exit_code"`
}

type app struct {
	version string
	home    string
	beh     behaviour
}

func main() {
	a, err := newApp()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeapp:", err)
		os.Exit(2)
	}
	args := os.Args[1:]
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "pre-upgrade":
		os.Exit(a.preUpgrade())
	case "version":
		a.printVersion(args[1:])
	case "__orphan-parent":
		os.Exit(a.orphanParent(args[1:]))
	case "__orphan":
		os.Exit(a.orphan(args[1:]))
	case "__migration":
		os.Exit(a.migration(args[1:]))
	default:
		os.Exit(a.run(args))
	}
}

// printVersion answers `version` as an SDK app does: with --long and --output json (or -o json),
// one line of JSON on stdout; and, as real apps do, a warning on stderr that must not end up in
// it.
func (a *app) printVersion(args []string) {
	long, jsonOut := false, false
	for i, arg := range args {
		switch {
		case arg == "--long":
			long = true
		case arg == "--output=json" || arg == "-o=json":
			jsonOut = true
		case (arg == "--output" || arg == "-o") && i+1 < len(args) && args[i+1] == "json":
			jsonOut = true
		}
	}
	if !long || !jsonOut {
		fmt.Printf("fakeapp %s\n", a.version)
		return
	}
	fmt.Fprintln(os.Stderr, "WARN fakeapp: this is a warning on stderr")
	b, _ := json.Marshal(map[string]any{
		"name": "fakeapp", "server_name": "app", "version": a.version, "commit": "0123abc",
		"build_tags": "", "go": "go version go1.26 linux/amd64", "cosmos_sdk_version": "v0.50.0",
	})
	fmt.Println(string(b))
}

func newApp() (*app, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating executable: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	a := &app{version: filepath.Base(filepath.Dir(filepath.Dir(exe)))}
	a.home = os.Getenv("DAEMON_HOME")
	if a.home == "" {
		// Fall back to the layout: the parent of the "cosmovisor" directory above the binary.
		for d := filepath.Dir(exe); d != filepath.Dir(d); d = filepath.Dir(d) {
			if filepath.Base(d) == "cosmovisor" {
				a.home = filepath.Dir(d)
				break
			}
		}
	}
	if a.home == "" {
		return nil, errors.New("DAEMON_HOME is not set and the binary is not under a cosmovisor/ directory")
	}
	b, err := os.ReadFile(filepath.Join(a.home, "fakeapp.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// No config: a quiet node.
	case err != nil:
		return nil, fmt.Errorf("reading config: %w", err)
	default:
		var all map[string]behaviour
		if err := json.Unmarshal(b, &all); err != nil {
			return nil, fmt.Errorf("parsing fakeapp.json: %w", err)
		}
		a.beh = all[a.version]
	}
	return a, nil
}

// logf appends one line to fakeapp.log with a single write, so concurrent writers (the old and the
// new binary, a pre-upgrade run) never interleave within a line.
func (a *app) logf(format string, args ...any) {
	line := a.version + " " + fmt.Sprintf(format, args...) + "\n"
	f, err := os.OpenFile(filepath.Join(a.home, "fakeapp.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeapp: log:", err)
		return
	}
	if _, err := f.WriteString(line); err != nil {
		fmt.Fprintln(os.Stderr, "fakeapp: log:", err)
	}
	f.Close()
}

func (a *app) preUpgrade() int {
	a.logf("pre-upgrade")
	codes := a.beh.PreUpgrade
	if len(codes) == 0 {
		codes = []int{1}
	}
	countFile := filepath.Join(a.home, "fakeapp."+a.version+".preupgrade-count")
	n := 0
	if b, err := os.ReadFile(countFile); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if err := os.WriteFile(countFile, []byte(strconv.Itoa(n+1)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "fakeapp: count:", err)
	}
	code := codes[min(n, len(codes)-1)]
	if a.beh.Migration != "" {
		// Like a real migration tool the hook waits for; pre-upgrade itself keeps SIGTERM's
		// default action, so the kernel's parent-death signal ends it and leaves the migration.
		exe, err := os.Executable()
		if err != nil {
			return 2
		}
		cmd := exec.Command(exe, "__migration", a.beh.Migration)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "fakeapp: migration:", err)
			return 30
		}
	}
	if code == -1 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the kill is delivered asynchronously
	}
	return code
}

var signalNames = map[os.Signal]string{
	syscall.SIGTERM: "TERM",
	syscall.SIGINT:  "INT",
	syscall.SIGHUP:  "HUP",
	syscall.SIGQUIT: "QUIT",
	syscall.SIGUSR1: "USR1",
	syscall.SIGUSR2: "USR2",
}

func (a *app) run(args []string) int {
	// Catch signals before announcing ourselves: a test that signals right after seeing the
	// start line must find the handler installed.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)

	if a.beh.DBLock {
		// Like goleveldb: an exclusive flock on the database's LOCK, held for the node's life
		// (never closed: the descriptor goes with the process). A second node on the same data
		// fails here, which is what a test of "never two nodes" looks for.
		f, err := os.OpenFile(filepath.Join(a.home, "data", "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		if err != nil {
			a.logf("db lock held: %v", err)
			return 3
		}
	}
	var cdb *chain
	if a.beh.Blocks != "" {
		var code int
		if cdb, code = a.openChain(args); cdb == nil {
			return code
		}
		defer cdb.close()
	}
	a.logf("%s", strings.TrimSpace("start "+strings.Join(args, " ")))
	a.logf("pid %d", os.Getpid())
	if cdb != nil {
		a.logf("start height %d", cdb.height)
	}
	for _, name := range a.beh.LogEnv {
		if v, ok := os.LookupEnv(name); ok {
			a.logf("env %s=%s", name, v)
		} else {
			a.logf("env %s unset", name)
		}
	}
	fmt.Printf("%s running\n", a.version)
	if p := os.Getenv("FAKEAPP_READY"); p != "" {
		if err := notifyReady(p, fmt.Sprintf("%s %d", a.version, os.Getpid())); err != nil {
			fmt.Fprintln(os.Stderr, "fakeapp: ready:", err)
		}
	}

	if a.beh.Orphans > 0 {
		if err := a.leaveOrphans(); err != nil {
			fmt.Fprintln(os.Stderr, "fakeapp: orphans:", err)
		}
	}

	exit := make(chan int, 2)
	if h := a.beh.Halt; h != nil {
		go func() {
			time.Sleep(parseDuration(h.After))
			if err := a.writeHalt(h); err != nil {
				fmt.Fprintln(os.Stderr, "fakeapp: halt:", err)
			}
			a.logf("halt %s", h.Name)
			if h.Then == "exit" {
				exit <- a.beh.ExitCode
			}
		}()
	}
	if a.beh.ExitAfter != "" {
		go func() {
			time.Sleep(parseDuration(a.beh.ExitAfter))
			exit <- a.beh.ExitCode
		}()
	}
	var blocks <-chan time.Time // nil without a chain: never ready
	if cdb != nil {
		t := time.NewTicker(parseDuration(a.beh.Blocks))
		defer t.Stop()
		blocks = t.C
	}
	for {
		select {
		case code := <-exit:
			return code
		case <-blocks:
			h, err := cdb.commit()
			if err != nil {
				a.logf("commit failed: %v", err)
				return 2
			}
			a.logf("commit %d", h)
			// As SDK v0.45's BaseApp.Commit: the check follows the commit and is >=, so a node
			// started at or past its halt height still commits one more block before it halts.
			if cdb.halt > 0 && h >= cdb.halt {
				a.logf("halt at %d", cdb.halt)
				if err := cdb.close(); err != nil {
					a.logf("db close failed: %v", err)
					return 2
				}
				return a.beh.HaltExitCode
			}
		case s := <-sigs:
			a.logf("got %s", signalNames[s])
			if s == syscall.SIGTERM && a.beh.OnTerm != "ignore" {
				blocks = nil // no block is committed while the node stops
				if a.beh.StopDelay != "" {
					time.Sleep(parseDuration(a.beh.StopDelay))
				}
				if cdb != nil {
					if err := cdb.close(); err != nil {
						a.logf("db close failed: %v", err)
					}
				}
				a.logf("exit %d", a.beh.TermExitCode)
				return a.beh.TermExitCode
			}
			// INT is ignored like a halted node does; the others are only logged.
		}
	}
}

// chain is the node's application database while blocks are on.
type chain struct {
	db     *leveldb.DB
	height int64 // last committed
	halt   int64 // --halt-height; 0 = none
}

// latestKey is store/rootmulti's latestVersionKey.
var latestKey = []byte("s/latest")

// openChain opens data/application.db as a node does and reads the committed height. On failure
// it has logged why and returns the exit code.
func (a *app) openChain(args []string) (*chain, int) {
	halt, err := haltHeight(args, filepath.Join(a.home, "config", "app.toml"))
	if err != nil {
		a.logf("bad flag: %v", err)
		return nil, 2
	}
	db, err := leveldb.OpenFile(filepath.Join(a.home, "data", "application.db"), nil)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		a.logf("db lock held: %v", err)
		return nil, 1
	}
	if err != nil {
		a.logf("db open failed: %v", err)
		return nil, 2
	}
	c := &chain{db: db, halt: halt}
	v, err := db.Get(latestKey, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
	case err != nil:
		db.Close()
		a.logf("db read failed: %v", err)
		return nil, 2
	case len(v) == 0:
		// gogoproto marshals Int64Value{0} to nothing.
	default:
		h, n := binary.Uvarint(v[1:])
		if v[0] != 0x08 || n != len(v)-1 {
			db.Close()
			a.logf("db read failed: s/latest is not an Int64Value: %x", v)
			return nil, 2
		}
		c.height = int64(h)
	}
	return c, 0
}

// commit commits the next height. A plain Put, as the SDK's commit: it is in LevelDB's journal
// once it returns, so it survives a SIGKILL of the node (not a power loss).
func (c *chain) commit() (int64, error) {
	h := c.height + 1
	if err := c.db.Put(latestKey, binary.AppendUvarint([]byte{0x08}, uint64(h)), nil); err != nil {
		return 0, err
	}
	c.height = h
	return h, nil
}

// close releases the database and its LOCK; closing twice is harmless.
func (c *chain) close() error {
	if c.db == nil {
		return nil
	}
	err := c.db.Close()
	c.db = nil
	return err
}

// haltHeight finds the SDK's --halt-height among the node's arguments; the last one wins, as
// with the SDK's flag parser. Without the flag, app.toml's top-level "halt-height = N" line
// counts, as the SDK reads it through viper.
func haltHeight(args []string, appToml string) (int64, error) {
	var (
		val   string
		found bool
	)
	for i, arg := range args {
		switch {
		case arg == "--halt-height" && i+1 < len(args):
			val, found = args[i+1], true
		case strings.HasPrefix(arg, "--halt-height="):
			val, found = strings.TrimPrefix(arg, "--halt-height="), true
		}
	}
	if !found {
		b, _ := os.ReadFile(appToml)
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "halt-height" {
				val, found = strings.TrimSpace(v), true
			}
		}
	}
	if !found {
		return 0, nil
	}
	h, err := strconv.ParseUint(val, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("--halt-height %q: %w", val, err)
	}
	return int64(h), nil
}

func (a *app) writeHalt(h *halt) error {
	var payload []byte
	if h.Content != nil {
		payload = []byte(*h.Content)
	} else {
		var err error
		payload, err = json.Marshal(map[string]any{
			"name": h.Name, "time": "0001-01-01T00:00:00Z", "height": h.Height, "info": "",
		})
		if err != nil {
			return err
		}
	}
	dir := filepath.Join(a.home, "data")
	path := filepath.Join(dir, "upgrade-info.json")
	switch h.Write {
	case "", "inplace", "raw":
		// What x/upgrade does: os.WriteFile, truncate then write.
		return os.WriteFile(path, payload, 0o600)
	case "rename":
		tmp, err := os.CreateTemp(dir, ".upgrade-info-*.tmp")
		if err != nil {
			return err
		}
		if _, err := tmp.Write(payload); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), path)
	case "halves":
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		half := len(payload) / 2
		if _, err := f.Write(payload[:half]); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		if _, err := f.Write(payload[half:]); err != nil {
			return err
		}
		return f.Close()
	default:
		return fmt.Errorf("unknown write mode %q", h.Write)
	}
}

func notifyReady(path, msg string) error {
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(msg))
	return err
}

func parseDuration(s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakeapp: bad duration %q: %v\n", s, err)
		os.Exit(2)
	}
	return d
}

// migration is pre-upgrade's long-running child: it ignores SIGTERM and refuses to run beside
// another migration of the same home (an flock, as a database would hold).
func (a *app) migration(args []string) int {
	signal.Ignore(syscall.SIGTERM)
	f, err := os.OpenFile(filepath.Join(a.home, "data", "MIGRATION.LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		a.logf("migration lock held: %v", err)
		return 3
	}
	a.logf("migration start")
	a.logf("migration pid %d", os.Getpid())
	time.Sleep(parseDuration(args[0]))
	a.logf("migration done")
	return 0
}

// leaveOrphans makes orphans the way daemonizing helpers do: a child starts the grandchildren and
// exits at once, so they are re-parented to the nearest subreaper or to PID 1 (vigil in a
// container), which must reap them when they exit.
func (a *app) leaveOrphans() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "__orphan-parent", strconv.Itoa(a.beh.Orphans), a.beh.OrphanLife)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // our own child: we reap it
	return nil
}

func (a *app) orphanParent(args []string) int {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		return 2
	}
	for range n {
		cmd := exec.Command(exe, "__orphan", strconv.Itoa(os.Getpid()), args[1])
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "fakeapp: orphan:", err)
			return 2
		}
	}
	return 0 // without waiting: that is what makes them orphans
}

// orphan waits to be re-parented, records its new parent (1 when vigil is PID 1), lives on for
// a while, then exits.
func (a *app) orphan(args []string) int {
	parent, err := strconv.Atoi(args[0])
	if err != nil {
		return 2
	}
	deadline := time.Now().Add(10 * time.Second)
	for os.Getppid() == parent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	a.logf("orphan ppid %d", os.Getppid())
	time.Sleep(parseDuration(args[1]))
	a.logf("orphan exit")
	return 0
}
