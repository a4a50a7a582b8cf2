package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/home"
)

// initCmd installs the genesis binary, creates `current` and data/, and
// writes the effective settings to cosmovisor/config.toml if it is missing.
func initCmd(args []string, stdout io.Writer, getenv getenvFunc) error {
	if len(args) != 1 || args[0] == "" {
		return errors.New("no <path to executable> provided")
	}
	exe := args[0]
	st, err := os.Stat(exe)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("executable file not found: %w", err)
	case err != nil:
		return fmt.Errorf("could not stat executable: %w", err)
	case st.IsDir():
		return errors.New("invalid path to executable: must not be a directory")
	}
	cfg, err := config.Load(getenv, "")
	if err != nil {
		return err
	}
	l := cfg.Layout()
	genBin := l.Bin(l.GenesisDir())
	copied, err := l.InstallGenesis(exe)
	if err != nil {
		return err
	}
	if copied {
		fmt.Fprintf(stdout, "installed %s\n", genBin)
	} else {
		fmt.Fprintf(stdout, "%s already exists, left as is\n", genBin)
	}
	if _, err := l.EnsureCurrent(); err != nil {
		return err
	}
	in, err := l.Installed()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "current -> %s\n", in.Dir)
	if err := os.MkdirAll(l.DataDir(), 0o700); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "data directory %s ready\n", l.DataDir())
	file := filepath.Join(l.Root(), config.FileName)
	wrote, err := cfg.WriteFile(file)
	if err != nil {
		return err
	}
	if wrote {
		fmt.Fprintf(stdout, "settings written to %s (use it with --cosmovisor-config)\n", file)
	} else {
		fmt.Fprintf(stdout, "%s already exists, left as is\n", file)
	}
	return nil
}

// addUpgradeCmd installs one upgrade binary and, with --upgrade-height,
// schedules it (batch false); add-batch-upgrade (batch true) does the same
// for a list, always with force, as cosmovisor's does. The work is
// home.AddUpgrades: everything is checked before anything is installed.
func addUpgradeCmd(args []string, stdout io.Writer, getenv getenvFunc, batch bool) error {
	cfg, args, err := loadConfig(args, getenv, true)
	if err != nil {
		return err
	}
	force, vals, pos := batch, map[string]string{}, []string(nil)
	for i := 0; i < len(args); i++ {
		name, v, hasV := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch {
		case !strings.HasPrefix(args[i], "-"):
			pos = append(pos, args[i])
			continue // a value flag sets vals below
		case name == "force" && !hasV:
			force = true
		case name != "upgrade-height" && !batch, name != "upgrade-list" && name != "upgrade-file" && batch:
			return fmt.Errorf("unknown flag %s; run 'vigil help'", args[i])
		case !hasV && i+1 >= len(args):
			return fmt.Errorf("--%s requires a value", name)
		case !hasV:
			i++
			v = args[i]
		}
		vals[name] = v
	}
	var us []home.Upgrade
	list, hasList := vals["upgrade-list"]
	file, hasFile := vals["upgrade-file"]
	switch {
	case batch && len(pos) > 0:
		return fmt.Errorf("add-batch-upgrade takes no arguments, got %q", pos)
	case hasList && hasFile:
		return errors.New("--upgrade-file and --upgrade-list cannot be used together")
	case hasList:
		us, err = home.ParseUpgradeList(strings.Split(list, ","))
	case hasFile:
		us, err = home.ReadUpgradeCSV(file)
	case batch:
		err = home.ErrNoUpgradeInput
	case len(pos) != 2:
		return fmt.Errorf("add-upgrade needs <name> <path-to-executable>, got %d argument(s)", len(pos))
	default:
		us = []home.Upgrade{{Name: pos[0], Exe: pos[1]}}
		if h, ok := vals["upgrade-height"]; ok {
			if us[0].Height, err = strconv.ParseInt(h, 10, 64); err != nil || us[0].Height <= 0 {
				return fmt.Errorf("--upgrade-height must be a positive integer, got %q", h)
			}
		}
	}
	if err == nil {
		err = cfg.Validate(false)
	}
	if err != nil {
		return err
	}
	added, err := cfg.Layout().AddUpgrades(us, force, func() (int64, error) {
		rpc, err := nodeRPC(cfg, "")
		if err != nil {
			return 0, err
		}
		return rpc.LatestHeight(context.Background())
	})
	for _, a := range added {
		fmt.Fprintf(stdout, "upgrade binary for %s staged at %s\n", a.Plan.Name, a.Bin)
		if h := a.Plan.Height; h > 0 && err == nil {
			fmt.Fprintf(stdout, "upgrade %s scheduled at height %d: the node will be started with --halt-height=%d and switched after it commits that block\n", a.Plan.Name, h, h)
		}
	}
	return err
}
