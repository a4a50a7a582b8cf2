package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/atomicfile"
	"github.com/vigilhq/vigil/plan"
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

// addUpgradeCmd stages an upgrade binary, optionally scheduling it.
func addUpgradeCmd(args []string, stdout io.Writer, getenv getenvFunc) error {
	var (
		force  bool
		height int64
		pos    []string
	)
	cfg, args, err := loadConfig(args, getenv, true)
	if err != nil {
		return err
	}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--force", "-force":
			force = true
		case "--upgrade-height", "-upgrade-height":
			if i+1 >= len(args) {
				return errors.New("--upgrade-height requires a value")
			}
			i++
			if height, err = strconv.ParseInt(args[i], 10, 64); err != nil || height <= 0 {
				return fmt.Errorf("--upgrade-height must be a positive integer, got %q", args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return fmt.Errorf("add-upgrade needs <name> <path-to-executable>, got %d argument(s)", len(pos))
	}
	if err := cfg.Validate(false); err != nil {
		return err
	}
	l := cfg.Layout()
	name, exe := pos[0], pos[1]
	if _, err := os.Stat(exe); err != nil {
		return fmt.Errorf("invalid executable path: %w", err)
	}
	dir, bin, err := l.InstallUpgrade(name, exe, force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "upgrade binary for %s staged at %s\n", name, bin)
	if height == 0 {
		return nil
	}
	info := l.UpgradeInfoFile()
	if _, err := os.Stat(info); err == nil && !force {
		return fmt.Errorf("file already exists at %s", info)
	}
	p := plan.Plan{Name: name, Height: height}
	if l.Recase {
		p.Name = dir
	}
	if err := atomicfile.WriteFile(info, p.Marshal(), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s written: vigil applies %s as soon as it reads it (it does not wait for height %d)\n", info, p.Name, height)
	return nil
}
