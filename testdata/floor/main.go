// Command floor is the least a cosmovisor-compatible supervisor must do to
// pick an upgrade up, for vigil's pickup benchmark to be measured against in
// the same run: start the node; on an fsnotify event for
// data/upgrade-info.json read and parse it; SIGTERM the node and reap it; run
// `<new binary> pre-upgrade`; rename a new `current` link into place; start
// the new binary with the same arguments. No checks, no backup, no logs.
//
//	DAEMON_HOME=… DAEMON_NAME=… floor <node args…>
package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

func main() {
	home, name := os.Getenv("DAEMON_HOME"), os.Getenv("DAEMON_NAME")
	root := filepath.Join(home, "cosmovisor")
	w, err := fsnotify.NewWatcher()
	if err != nil || w.Add(filepath.Join(home, "data")) != nil {
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	node := start(filepath.Join(root, "current", "bin", name))
	for {
		select {
		case s := <-sigs:
			node.Process.Signal(s)
			node.Wait()
			os.Exit(node.ProcessState.ExitCode())
		case ev := <-w.Events:
			if filepath.Base(ev.Name) != "upgrade-info.json" {
				continue
			}
			var plan struct{ Name string }
			b, err := os.ReadFile(ev.Name)
			if err != nil || json.Unmarshal(b, &plan) != nil || plan.Name == "" {
				continue
			}
			dir := filepath.Join("upgrades", plan.Name)
			bin := filepath.Join(root, dir, "bin", name)
			node.Process.Signal(syscall.SIGTERM)
			node.Wait()
			exec.Command(bin, "pre-upgrade").Run()
			tmp := filepath.Join(root, ".current.tmp")
			os.Symlink(dir, tmp)
			os.Rename(tmp, filepath.Join(root, "current"))
			node = start(bin)
			w.Remove(filepath.Join(home, "data")) // one upgrade per run
		}
	}
}

func start(bin string) *exec.Cmd {
	cmd := exec.Command(bin, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if cmd.Start() != nil {
		os.Exit(2)
	}
	return cmd
}
