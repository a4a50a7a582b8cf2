// Command devnetctl is the devnet script's helper: the parts that are awkward
// in bash (free ports, line timestamps, JSON, HTTP, time arithmetic). It uses
// only the standard library so CI needs nothing but Go.
//
//	devnetctl ports N                      N free TCP ports on 127.0.0.1, one a line
//	devnetctl genesis FILE PERIOD DEPOSIT  short gov voting period, one-deposit minimum, 1ms time iota
//	devnetctl height RPC                   latest block height from RPC /status
//	devnetctl serve DIR PORTFILE           serve DIR on 127.0.0.1, port written to PORTFILE
//	devnetctl follow LOG [flags]           stamp stdin lines into LOG, narrate the upgrade
//	devnetctl report LOG NAME HEIGHT       downtime and vigil's breakdown from LOG
//	devnetctl report-manual LOG NAME HEIGHT RPC
//	                                       the same for a --halt-height upgrade, with block times
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fatal(errors.New("usage: devnetctl ports|genesis|height|serve|follow|report|report-manual ..."))
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "ports":
		err = ports(args)
	case "genesis":
		err = genesis(args)
	case "height":
		err = height(args)
	case "serve":
		err = serve(args)
	case "follow":
		err = follow(args)
	case "report":
		err = report(args)
	case "report-manual":
		err = reportManual(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "devnetctl:", err)
	os.Exit(1)
}

// ports holds every listener open until all are chosen, so the N ports are
// distinct; the kernel does not hand a just-closed ephemeral port out again
// soon, which is as good as a script that starts a node afterwards can get.
func ports(args []string) error {
	if len(args) != 1 {
		return errors.New("ports N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("ports: bad count %q", args[0])
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// genesis edits a v0.45 genesis in place for a fast devnet. Numbers are kept as written
// (UseNumber); key order is not, which genesis validation does not care about.
func genesis(args []string) error {
	if len(args) != 3 {
		return errors.New("genesis FILE VOTING_PERIOD MIN_DEPOSIT (e.g. 10s 1000stake)")
	}
	file, period, deposit := args[0], args[1], args[2]
	if _, err := time.ParseDuration(period); err != nil {
		return fmt.Errorf("voting period: %w", err)
	}
	i := strings.IndexFunc(deposit, func(r rune) bool { return r < '0' || r > '9' })
	if i <= 0 {
		return fmt.Errorf("min deposit %q: want <amount><denom>", deposit)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var g map[string]any
	if err := dec.Decode(&g); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	gov, err := path(g, "app_state", "gov")
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	vp, err := path(gov, "voting_params")
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	dp, err := path(gov, "deposit_params")
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	// Tendermint 0.34 makes each block at least time_iota_ms (default 1000)
	// later than the previous one: with 0.5s blocks the chain's clock would run
	// ahead of the wall clock by 0.5s a block, and so would the voting period.
	blk, err := path(g, "consensus_params", "block")
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	blk["time_iota_ms"] = "1"
	// Genesis durations are protobuf JSON: seconds with an "s".
	d, _ := time.ParseDuration(period)
	vp["voting_period"] = strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	dp["min_deposit"] = []any{map[string]any{"denom": deposit[i:], "amount": deposit[:i]}}
	out, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(out, '\n'), 0o644)
}

func path(m map[string]any, keys ...string) (map[string]any, error) {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("no object at %q", k)
		}
		m = next
	}
	return m, nil
}

func height(args []string) error {
	if len(args) != 1 {
		return errors.New("height RPC_URL")
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(strings.TrimSuffix(args[0], "/") + "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var st struct {
		Result struct {
			SyncInfo struct {
				LatestBlockHeight string `json:"latest_block_height"`
			} `json:"sync_info"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if st.Result.SyncInfo.LatestBlockHeight == "" {
		return errors.New("status: no latest_block_height")
	}
	fmt.Println(st.Result.SyncInfo.LatestBlockHeight)
	return nil
}

// serve stands in for a release page: vigil downloads the upgrade binary from it.
func serve(args []string) error {
	if len(args) != 2 {
		return errors.New("serve DIR PORTFILE")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	tmp := args[1] + ".tmp"
	if err := os.WriteFile(tmp, []byte(port+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, args[1]); err != nil {
		return err
	}
	fs := http.FileServer(http.Dir(args[0]))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, "%s serve: %s %s\n", time.Now().Format(time.RFC3339Nano), r.Method, r.URL)
		fs.ServeHTTP(w, r)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// line is one line of the stamped log: the time devnetctl read it, and the
// parsed JSON if it is a vigil (slog: "msg") or node (zerolog: "message") line.
type line struct {
	stamp time.Time
	raw   string
	who   string // "vigil", "node", "devnet" or "" for anything else
	msg   string
	f     map[string]any
}

// at is when the line's event happened: vigil's own RFC 3339 time (the same
// clock, without the pipe in between), else when the line was read.
func (l line) at() time.Time {
	if l.who == "vigil" {
		if s, ok := l.f["time"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t
			}
		}
	}
	return l.stamp
}

func (l line) int(key string) (int64, bool) {
	switch v := l.f[key].(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func parse(raw string) line {
	l := line{raw: raw}
	if !strings.HasPrefix(raw, "{") {
		return l
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&l.f) != nil {
		return l
	}
	if m, ok := l.f["msg"].(string); ok {
		l.who, l.msg = "vigil", m
	} else if m, ok := l.f["message"].(string); ok {
		l.who, l.msg = "node", m
	} else if m, ok := l.f["devnet"].(string); ok {
		l.who, l.msg = "devnet", m
	}
	return l
}

const stampLayout = "2006-01-02T15:04:05.000000000Z07:00"

// follow copies stdin (vigil's stderr and stdout, which the node shares) to
// the log with a receive timestamp on every line: zerolog, as the SDK sets it
// up, stamps whole seconds only. It narrates the interesting lines on stdout
// and writes each node pid vigil reports to the pids file for the cleanup.
func follow(args []string) error {
	fl := flag.NewFlagSet("follow", flag.ContinueOnError)
	pidsFile := fl.String("pids", "", "append each node pid vigil starts to this file")
	heightFile := fl.String("height-file", "", "file holding the upgrade height, once known (narrates every block near it)")
	killOn := fl.String("kill-on", "", "SIGKILL the process group in -kill-pid-file when vigil logs this message (once)")
	killPidFile := fl.String("kill-pid-file", "", "file holding vigil's pid")
	if len(args) < 1 {
		return errors.New("follow LOG [flags]")
	}
	logPath := args[0]
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	upgradeHeight := func() int64 {
		if *heightFile == "" {
			return 0
		}
		b, err := os.ReadFile(*heightFile)
		if err != nil {
			return 0
		}
		h, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return h
	}
	killed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		now := time.Now()
		raw := sc.Text()
		// One write per line, unbuffered: the log is read while it grows.
		if _, err := io.WriteString(out, now.Format(stampLayout)+" "+raw+"\n"); err != nil {
			return err
		}
		l := parse(raw)
		l.stamp = now
		if s := narrate(l, upgradeHeight); s != "" {
			fmt.Printf("%s %s\n", l.at().Format("15:04:05.000"), s)
		}
		if l.who == "vigil" && *killOn != "" && !killed && l.msg == *killOn {
			killed = true
			msg := killVigil(*killPidFile)
			io.WriteString(out, time.Now().Format(stampLayout)+` {"devnet":`+strconv.Quote(msg)+"}\n")
			fmt.Printf("%s devnet  %s\n", time.Now().Format("15:04:05.000"), msg)
		}
		if l.who == "vigil" && l.msg == "app started" && *pidsFile != "" {
			if pid, ok := l.int("pid"); ok {
				appendLine(*pidsFile, strconv.FormatInt(pid, 10))
			}
		}
	}
	return sc.Err()
}

func killVigil(pidFile string) string {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Sprintf("cannot kill vigil: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Sprintf("cannot kill vigil: bad pid %q", b)
	}
	// vigil runs in its own session, so its group is just vigil (the node
	// has its own group): this kills vigil and nothing else.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		return fmt.Sprintf("cannot kill vigil (pid %d): %v", pid, err)
	}
	return fmt.Sprintf("SIGKILL sent to vigil (process group %d) mid-upgrade", pid)
}

func appendLine(file, s string) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devnetctl:", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, s)
}

// narrate returns the narration for l, or "" to stay quiet.
func narrate(l line, upgradeHeight func() int64) string {
	switch l.who {
	case "vigil":
		if lvl, _ := l.f["level"].(string); lvl == "DEBUG" {
			// Only the raw event that reveals the halt; the rest is noise.
			name, _ := l.f["name"].(string)
			if l.msg != "fsnotify event" || filepath.Base(name) != "upgrade-info.json" {
				return ""
			}
		}
		return "vigil   " + l.msg + attrs(l.f, "time", "level", "msg")
	case "node":
		m := l.msg
		lvl, _ := l.f["level"].(string)
		switch {
		case m == "committed state":
			h, _ := l.int("height")
			uh := upgradeHeight()
			if (uh > 0 && h >= uh-2 && h <= uh+2) || h%10 == 0 || h <= 2 {
				return fmt.Sprintf("node    block %d committed", h)
			}
			return ""
		case strings.Contains(m, "UPGRADE"), strings.Contains(m, "upgrade"),
			strings.Contains(m, "new module"), strings.Contains(m, "migrat"),
			strings.HasPrefix(m, "ABCI Replay"), strings.HasPrefix(m, "Replay last block"),
			m == "ABCI Handshake App Info", m == "Starting Node service",
			strings.HasPrefix(m, "CONSENSUS FAILURE"), strings.HasPrefix(m, "halting node"):
			return "node    " + firstLine(m)
		case lvl == "error" || lvl == "fatal" || lvl == "panic":
			return "node    " + lvl + ": " + firstLine(m)
		}
		return ""
	case "devnet":
		return "devnet  " + l.msg
	}
	if strings.HasPrefix(l.raw, "panic:") || strings.HasPrefix(l.raw, "Error") {
		return "output  " + l.raw
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func attrs(f map[string]any, skip ...string) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if contains(skip, k) {
			continue
		}
		v := fmt.Sprint(f[k])
		if n, ok := f[k].(json.Number); ok && durationKeys[k] {
			if ns, err := n.Int64(); err == nil {
				v = time.Duration(ns).String()
			}
		}
		if len(v) > 120 {
			v = v[:120] + "…"
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

// durationKeys are vigil's attributes that slog's JSON writes as nanoseconds.
var durationKeys = map[string]bool{"took": true, "pickup": true, "grace": true, "safety_interval": true, "next_try": true, "wait": true}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// report reads the stamped log and prints the downtime, defined as
//
//	halt = when the old node logged `UPGRADE "<name>" NEEDED at height: H`
//	       (x/upgrade writes upgrade-info.json just before it)
//	back = when the new node logged "committed state" for height H: block H,
//	       the one the old binary refused, executed and committed by the new one
//
// all on the machine's wall clock (vigil's own timestamps, and devnetctl's
// receive stamps for node lines, which zerolog stamps to the second only). It
// also prints every step in between and when block H+1 (the first block
// produced by consensus on the new binary) was committed. It fails when the
// halt or block H on the new binary is missing from the log.
func report(args []string) error {
	ls, name, h, err := reportArgs(args, "report LOG NAME HEIGHT")
	if err != nil {
		return err
	}

	needed := fmt.Sprintf("UPGRADE %q NEEDED at height: %d", name, h)
	halt := -1
	for i, l := range ls {
		if l.who == "node" && strings.HasPrefix(l.msg, needed) {
			halt = i
			break
		}
	}
	if halt < 0 {
		return fmt.Errorf("report: the node never logged %q", needed)
	}
	t0 := ls[halt].at()

	type step struct {
		i    int
		text string
	}
	var steps []step
	add := func(i int, text string) { steps = append(steps, step{i, text}) }
	// The watcher can see upgrade-info.json a few µs before the halt line:
	// start looking for vigil's steps at the previous block's commit.
	from := halt
	for i := halt - 1; i >= 0; i-- {
		if ls[i].who == "node" && ls[i].msg == "committed state" {
			if hh, _ := ls[i].int("height"); hh == h-1 {
				add(i, fmt.Sprintf("node   block %d committed on the old binary", h-1))
				from = i
				break
			}
		}
	}
	add(halt, "node   halt: "+ls[halt].msg)
	seen := map[string]bool{}
	first := func(i int, key, text string) {
		if !seen[key] {
			seen[key] = true
			add(i, text)
		}
	}
	started, back, next := -1, -1, -1
	for i := from + 1; i < len(ls); i++ {
		l := ls[i]
		switch l.who {
		case "vigil":
			switch l.msg {
			case "fsnotify event":
				if n, _ := l.f["name"].(string); filepath.Base(n) == "upgrade-info.json" {
					first(i, "event", "vigil  inotify event for upgrade-info.json")
				}
			case "upgrade detected":
				first(i, "detected", "vigil  upgrade detected (binary checked, marker written)")
			case "upgrade pending at start; applying it before starting the app":
				add(i, "vigil  (restarted) upgrade pending at start")
			case "stopping app":
				first(i, "stopping", "vigil  stopping app (SIGTERM)")
			case "app stopped":
				add(i, "vigil  app stopped"+attrs(l.f, "time", "level", "msg", "exit", "killed", "plan"))
			case "app exited":
				add(i, "vigil  app exited"+attrs(l.f, "time", "level", "msg"))
			case "backup done":
				add(i, "vigil  backup done"+attrs(l.f, "time", "level", "msg", "path", "plan"))
			case "pre-upgrade not implemented by the app; continuing", "pre-upgrade done":
				add(i, "vigil  "+l.msg)
			case "switched":
				add(i, "vigil  switched current")
			case "app started":
				if seen["switched"] && started < 0 {
					started = i
				}
				add(i, "vigil  app started"+attrs(l.f, "time", "level", "msg", "args"))
			}
			if l.msg == "switched" {
				seen["switched"] = true
			}
		case "devnet":
			add(i, "devnet "+l.msg)
		case "node":
			if !seen["switched"] {
				continue
			}
			switch {
			case l.msg == "ABCI Handshake App Info":
				first(i, "handshake", "node   new binary: ABCI handshake (app opened its stores)")
			case strings.HasPrefix(l.msg, "applying upgrade"):
				first(i, "applying", "node   "+l.msg)
			case l.msg == "committed state":
				hh, _ := l.int("height")
				if hh == h && back < 0 {
					back = i
					add(i, fmt.Sprintf("node   block %d committed on the new binary", h))
				}
				if hh == h+1 && next < 0 {
					next = i
					add(i, fmt.Sprintf("node   block %d committed (first block by consensus on the new binary)", h+1))
				}
			}
		}
		if next >= 0 {
			break
		}
	}
	sort.SliceStable(steps, func(a, b int) bool { return ls[steps[a].i].at().Before(ls[steps[b].i].at()) })
	fmt.Printf("timeline (wall clock; +offset from the halt):\n")
	for _, s := range steps {
		fmt.Printf("  %s  %+8.3fs  %s\n", ls[s.i].at().Format("15:04:05.000000"), ls[s.i].at().Sub(t0).Seconds(), s.text)
	}
	if back < 0 {
		return fmt.Errorf("report: block %d was never committed by the new binary", h)
	}
	at := func(i int) time.Time { return ls[i].at() }
	find := func(msg string, after int) int {
		for i := after; i < len(ls) && i <= back; i++ {
			if ls[i].who == "vigil" && ls[i].msg == msg {
				return i
			}
		}
		return -1
	}
	fmt.Println()
	fmt.Printf("DOWNTIME halt -> block %d committed on v0.46: %.3fs\n", h, at(back).Sub(t0).Seconds())
	if next >= 0 {
		fmt.Printf("         halt -> block %d committed (consensus running again): %.3fs\n", h+1, at(next).Sub(t0).Seconds())
	}
	det, stop, stopped := find("upgrade detected", from), find("stopping app", from), find("app stopped", from)
	sw := find("switched", from)
	if det >= 0 && stop >= 0 && stopped >= 0 && sw >= 0 && started >= 0 && sw < started {
		fmt.Printf("vigil's part: detect %.1fms (halt -> upgrade detected), stop %.1fms (SIGTERM -> node gone), "+
			"switch %.1fms (node gone -> current switched: backup, pre-upgrade), start %.1fms (switch -> new node spawned)\n",
			ms(at(det).Sub(t0)), ms(at(stopped).Sub(at(stop))), ms(at(sw).Sub(at(stopped))), ms(at(started).Sub(at(sw))))
		fmt.Printf("node's part:  %.1fms (new node spawned -> block %d committed: start-up, store loading, migration)\n",
			ms(at(back).Sub(at(started))), h)
	} else {
		fmt.Println("vigil's part: not the plain sequence (vigil restarted mid-upgrade?); see the timeline")
	}
	return nil
}

// readLog parses the stamped log follow wrote.
func readLog(file string) ([]line, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var ls []line
	for _, s := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		stamp, raw, ok := strings.Cut(s, " ")
		if !ok {
			continue
		}
		t, err := time.Parse(stampLayout, stamp)
		if err != nil {
			continue
		}
		l := parse(raw)
		l.stamp = t
		ls = append(ls, l)
	}
	return ls, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// reportArgs reads the arguments both reports start with, LOG NAME HEIGHT,
// and the log; usage names them all.
func reportArgs(args []string, usage string) (ls []line, name string, h int64, err error) {
	if len(args) != len(strings.Fields(usage))-1 {
		return nil, "", 0, errors.New(usage)
	}
	if h, err = strconv.ParseInt(args[2], 10, 64); err != nil {
		return nil, "", 0, fmt.Errorf("height: %w", err)
	}
	ls, err = readLog(args[0])
	return ls, args[1], h, err
}
