package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// reportManual reports an upgrade scheduled without governance, by
// `vigil add-upgrade NAME BIN --upgrade-height H`: vigil starts the old
// binary with --halt-height=H, the SDK's BaseApp commits block H and stops
// its own process ("halting node per configuration", then SIGINT and SIGTERM
// to itself), and vigil switches to the new binary, which makes block H+1.
// The downtime runs
//
//	halt = when the old node logged "halting node per configuration" (in
//	       BaseApp.Commit of block H, after the app committed it)
//	back = when the new node logged "committed state" for block H+1, the
//	       first block made on the new binary
//
// It fails unless all of these hold:
//   - the node that halted was started with --halt-height=H (vigil's "app
//     started") and said so ("halting node per configuration" height H);
//   - the next node started, after vigil saw the old one exit, runs the
//     new binary: its ABCI handshake reports software-version WANT_VERSION
//     and finds the app's state at height H (appHeight), which only the old
//     binary can have committed; it commits H+1;
//   - the chain agrees: block H's commit (its precommit's timestamp, which
//     is also block H+1's header time) is older than the old node's exit,
//     and block H+1's commit is newer than the new node's start.
func reportManual(args []string) error {
	ls, name, h, err := reportArgs(args, "report-manual LOG NAME HEIGHT RPC_URL WANT_VERSION")
	if err != nil {
		return err
	}
	rpc, want := args[3], args[4]
	m, err := scanManual(ls, h)
	if err != nil {
		return err
	}
	commitH, err := commitAt(rpc, h)
	if err != nil {
		return err
	}
	commitNext, err := commitAt(rpc, h+1)
	if err != nil {
		return err
	}
	m.print(ls, h)

	fmt.Printf("\nblocks, from the node's RPC (a block is committed when its precommit is signed; one validator):\n")
	for _, c := range []blockTimes{commitH, commitNext} {
		fmt.Printf("  block %d  header time %s  precommit signed %s\n", c.height, clock(c.header), clock(c.signed))
	}
	at := func(i int) time.Time { return ls[i].at() }
	fmt.Printf("  old node exited (vigil: app exited)  %s  %v\n", clock(at(m.exited)), ls[m.exited].f["exit"])
	fmt.Printf("  new node started (vigil: app started) %s  %s\n", clock(at(m.started)), ls[m.started].f["path"])

	var bad []string
	if !commitH.signed.Before(at(m.exited)) {
		bad = append(bad, fmt.Sprintf("block %d was signed at %s, not before the old node exited (%s)", h, clock(commitH.signed), clock(at(m.exited))))
	}
	if !commitNext.signed.After(at(m.started)) {
		bad = append(bad, fmt.Sprintf("block %d was signed at %s, not after the new node started (%s)", h+1, clock(commitNext.signed), clock(at(m.started))))
	}
	if v, _ := ls[m.handshake].f["software-version"].(string); v != want {
		bad = append(bad, fmt.Sprintf("the node started after the halt reports software-version %q, want %q (the %s binary)", v, want, name))
	}
	if len(bad) > 0 {
		return fmt.Errorf("report-manual: %s", strings.Join(bad, "; "))
	}
	fmt.Printf("  => block %d by the old binary (signed %.3fs before it exited), block %d by the new one (signed %.3fs after it started)\n",
		h, at(m.exited).Sub(commitH.signed).Seconds(), h+1, commitNext.signed.Sub(at(m.started)).Seconds())

	t0 := at(m.halt)
	fmt.Println()
	fmt.Printf("DOWNTIME halt -> block %d committed on the new binary: %.3fs\n", h+1, at(m.back).Sub(t0).Seconds())
	fmt.Printf("         block %d signed -> block %d signed (the chain's own clock; 0.5s without an upgrade): %.3fs\n",
		h, h+1, commitNext.signed.Sub(commitH.signed).Seconds())
	fmt.Printf("vigil's part: halt -> app exited %.1fms (the node stops itself), exited -> new node spawned %.1fms "+
		"(committed height read, plan written, backup, pre-upgrade, switch)\n",
		ms(at(m.exited).Sub(t0)), ms(at(m.started).Sub(at(m.exited))))
	fmt.Printf("node's part:  %.1fms (new node spawned -> block %d committed: start-up, handshake, one round of consensus)\n",
		ms(at(m.back).Sub(at(m.started))), h+1)
	return nil
}

// manualRun holds the indexes, in the log, of the lines reportManual needs.
type manualRun struct {
	oldStart, prev, halt, exited, started, handshake, replay, back int
	steps                                                          []int // vigil's and the new node's lines worth a row
}

func scanManual(ls []line, h int64) (*manualRun, error) {
	m := &manualRun{oldStart: -1, prev: -1, halt: -1, exited: -1, started: -1, handshake: -1, replay: -1, back: -1}
	for i, l := range ls {
		if l.who == "vigil" && l.msg == "app started" {
			m.oldStart = i
		}
		if l.who == "node" && l.msg == "committed state" {
			if hh, _ := l.int("height"); hh == h-1 {
				m.prev = i
			}
		}
		if l.who == "node" && strings.HasPrefix(l.msg, "halting node per configuration") {
			m.halt = i
			break
		}
	}
	switch {
	case m.halt < 0:
		return nil, errors.New("report-manual: the node never logged \"halting node per configuration\"")
	case m.oldStart < 0:
		return nil, errors.New("report-manual: vigil never logged \"app started\" before the halt")
	}
	if hh, _ := ls[m.halt].int("height"); hh != h {
		return nil, fmt.Errorf("report-manual: the node halted for --halt-height %d, want %d", hh, h)
	}
	if got := haltArg(ls[m.oldStart].f["args"]); got != strconv.FormatInt(h, 10) {
		return nil, fmt.Errorf("report-manual: the node that halted was started with --halt-height %q, want %d (args %v)", got, h, ls[m.oldStart].f["args"])
	}
	if m.prev < 0 || m.prev < m.oldStart {
		return nil, fmt.Errorf("report-manual: the node that halted did not log block %d committed", h-1)
	}
	for i := m.halt + 1; i < len(ls) && m.back < 0; i++ {
		l := ls[i]
		switch {
		case l.who == "vigil" && (strings.HasPrefix(l.msg, "app exited") || l.msg == "app stopped") && m.exited < 0:
			m.exited = i
		case l.who == "vigil" && l.msg == "app started" && m.exited >= 0 && m.started < 0:
			m.started = i
		case l.who == "node" && m.started >= 0 && l.msg == "ABCI Handshake App Info" && m.handshake < 0:
			m.handshake = i
		case l.who == "node" && m.started >= 0 && l.msg == "ABCI Replay Blocks" && m.replay < 0:
			m.replay = i
		case l.who == "node" && m.started >= 0 && l.msg == "committed state":
			if hh, _ := l.int("height"); hh == h+1 {
				m.back = i
			}
		}
		if worthARow(l, m.started >= 0) {
			m.steps = append(m.steps, i)
		}
	}
	switch {
	case m.exited < 0:
		return nil, errors.New("report-manual: vigil never logged \"app exited\" after the halt")
	case m.started < 0:
		return nil, errors.New("report-manual: vigil never started a node after the halt")
	case m.handshake < 0 || m.replay < 0:
		return nil, errors.New("report-manual: the new node logged no ABCI handshake")
	case m.back < 0:
		return nil, fmt.Errorf("report-manual: block %d was never committed by the new binary", h+1)
	}
	if ah, _ := ls[m.replay].int("appHeight"); ah != h {
		return nil, fmt.Errorf("report-manual: the new node found the app at height %d, want %d (the old binary's last block)", ah, h)
	}
	return m, nil
}

// worthARow: vigil's steps (not its debug noise, but the watcher's event for
// upgrade-info.json) and, from the new node, its handshake and commits.
func worthARow(l line, newNode bool) bool {
	switch l.who {
	case "vigil":
		if lvl, _ := l.f["level"].(string); lvl == "DEBUG" {
			n, _ := l.f["name"].(string)
			return l.msg == "fsnotify event" && filepath.Base(n) == "upgrade-info.json"
		}
		return true
	case "devnet":
		return true
	case "node":
		return newNode && (l.msg == "ABCI Handshake App Info" || l.msg == "ABCI Replay Blocks" ||
			l.msg == "Replay last block using mock app" || l.msg == "committed state")
	}
	return false
}

func (m *manualRun) print(ls []line, h int64) {
	t0 := ls[m.halt].at()
	row := func(i int, text string) {
		fmt.Printf("  %s  %+8.3fs  %s\n", ls[i].at().Format("15:04:05.000000"), ls[i].at().Sub(t0).Seconds(), text)
	}
	fmt.Printf("timeline (wall clock; +offset from the halt):\n")
	row(m.oldStart, "vigil  app started (the old binary)"+attrs(ls[m.oldStart].f, "time", "level", "msg"))
	row(m.prev, fmt.Sprintf("node   block %d committed on the old binary", h-1))
	row(m.halt, fmt.Sprintf("node   halting node per configuration (--halt-height %d): block %d committed, the node signals itself", h, h))
	for _, i := range m.steps {
		l := ls[i]
		switch {
		case i == m.handshake:
			row(i, fmt.Sprintf("node   new binary: ABCI handshake, software-version %q", l.f["software-version"]))
		case l.who == "node" && l.msg == "ABCI Handshake App Info":
			// a second start of the new node: shown by vigil's lines
		case l.who == "vigil" && l.msg == "fsnotify event":
			row(i, "vigil  inotify event for upgrade-info.json")
		case l.who == "vigil":
			row(i, "vigil  "+l.msg+attrs(l.f, "time", "level", "msg", "args"))
		case l.who == "devnet":
			row(i, "devnet "+l.msg)
		case l.msg == "ABCI Replay Blocks":
			row(i, "node   ABCI Replay Blocks"+attrs(l.f, "time", "level", "message", "module"))
		case l.msg == "Replay last block using mock app":
			row(i, fmt.Sprintf("node   block %d replayed to Tendermint from its stored results (mock app, not executed again)", h))
		case l.msg == "committed state":
			hh, _ := l.int("height")
			switch {
			case hh == h+1:
				row(i, fmt.Sprintf("node   block %d committed (the first block made on the new binary)", hh))
			case hh != h:
				row(i, fmt.Sprintf("node   block %d committed", hh))
			}
		}
	}
}

// haltArg is the value of the last --halt-height among a node's arguments
// as vigil logged them ("" when there is none).
func haltArg(v any) string {
	as, _ := v.([]any)
	val := ""
	for i, a := range as {
		s, _ := a.(string)
		if after, ok := strings.CutPrefix(s, "--halt-height="); ok {
			val = after
		} else if s == "--halt-height" && i+1 < len(as) {
			val, _ = as[i+1].(string)
		}
	}
	return val
}

type blockTimes struct {
	height         int64
	header, signed time.Time
}

// commitAt asks Tendermint's RPC for block height's commit: the header's
// time, and when the (only) validator signed its precommit.
func commitAt(rpc string, height int64) (blockTimes, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("%s/commit?height=%d", strings.TrimSuffix(rpc, "/"), height))
	if err != nil {
		return blockTimes{}, err
	}
	defer resp.Body.Close()
	var r struct {
		Result struct {
			SignedHeader struct {
				Header struct {
					Time time.Time `json:"time"`
				} `json:"header"`
				Commit struct {
					Signatures []struct {
						Timestamp time.Time `json:"timestamp"`
					} `json:"signatures"`
				} `json:"commit"`
			} `json:"signed_header"`
		} `json:"result"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return blockTimes{}, fmt.Errorf("commit %d: %w", height, err)
	}
	if len(r.Error) > 0 {
		return blockTimes{}, fmt.Errorf("commit %d: %s", height, r.Error)
	}
	sh := r.Result.SignedHeader
	bt := blockTimes{height: height, header: sh.Header.Time}
	for _, s := range sh.Commit.Signatures {
		if !s.Timestamp.IsZero() && s.Timestamp.After(bt.signed) {
			bt.signed = s.Timestamp
		}
	}
	if bt.header.IsZero() || bt.signed.IsZero() {
		return blockTimes{}, fmt.Errorf("commit %d: no header time or no signature", height)
	}
	return bt, nil
}

func clock(t time.Time) string { return t.Local().Format("15:04:05.000000") }
