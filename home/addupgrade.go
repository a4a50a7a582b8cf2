package home

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/height"
	"github.com/vigilhq/vigil/plan"
)

// Upgrade is one binary for `add-upgrade` or `add-batch-upgrade` to install
// under upgrades/ and, with a height, to schedule.
type Upgrade struct {
	Name   string
	Exe    string // the binary to copy
	Height int64  // 0: install only
}

// Added is an Upgrade once installed: the plan as scheduled (its name
// lowercased when recase is on) and where its binary went.
type Added struct {
	Plan plan.Plan
	Dir  string // directory under upgrades/
	Bin  string
}

// ErrNoUpgradeInput is add-batch-upgrade given neither a list nor a file.
var ErrNoUpgradeInput = errors.New("either --upgrade-file or --upgrade-list must be provided")

// ParseUpgradeList parses `--upgrade-list` items, name:path:height each
// (a comma-separated flag value is split by the caller), with cosmovisor
// v1.7's messages. Positions count from 0, as cosmovisor's do.
func ParseUpgradeList(items []string) ([]Upgrade, error) {
	var us []Upgrade
	for i, item := range items {
		u, err := parseUpgradeRecord(i, item, strings.Split(item, ":"))
		if err != nil {
			return nil, err
		}
		us = append(us, u)
	}
	if len(us) == 0 {
		return nil, ErrNoUpgradeInput
	}
	return us, nil
}

// ReadUpgradeCSV reads `--upgrade-file`: headerless CSV, one
// name,path,height record per upgrade, leading spaces trimmed.
func ReadUpgradeCSV(path string) ([]Upgrade, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("error parsing upgrade CSV file %s: %w", path, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = -1 // a wrong count is reported below, by position
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("error parsing upgrade CSV file %s: %w", path, err)
	}
	var us []Upgrade
	for i, rec := range recs {
		u, err := parseUpgradeRecord(i, strings.Join(rec, ","), rec)
		if err != nil {
			return nil, fmt.Errorf("upgrade CSV file %s: %w", path, err)
		}
		us = append(us, u)
	}
	if len(us) == 0 {
		return nil, fmt.Errorf("error parsing upgrade CSV file %s: no upgrades in it", path)
	}
	return us, nil
}

func parseUpgradeRecord(i int, item string, parts []string) (Upgrade, error) {
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Upgrade{}, fmt.Errorf("argument at position %d (%s) is invalid", i, item)
	}
	h, err := strconv.ParseInt(strings.TrimSpace(parts[2]), 10, 64)
	if err != nil || h <= 0 {
		return Upgrade{}, fmt.Errorf("upgrade height at position %d (%s) is invalid", i, parts[2])
	}
	return Upgrade{Name: parts[0], Exe: parts[1], Height: h}, nil
}

// AddUpgrades installs each binary under upgrades/<dir>/bin and schedules
// those with a height, in one Schedule. Everything is checked first (each
// binary can run here, no binary is overwritten without force, the plans fit
// the schedule), so a mistake in the fifth upgrade of a batch installs
// nothing. With force, binaries and schedules of the same name are replaced.
func (l Layout) AddUpgrades(us []Upgrade, force bool, running Running) ([]Added, error) {
	added := make([]Added, len(us))
	var ps []plan.Plan
	for i, u := range us {
		dir, err := l.DirName(u.Name)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(u.Exe); err != nil {
			return nil, fmt.Errorf("invalid executable path for upgrade %s: %w", u.Name, err)
		}
		if err := CheckFormat(u.Exe); err != nil {
			return nil, fmt.Errorf("upgrade %s: %w", u.Name, err)
		}
		bin := l.Bin(l.UpgradeDir(dir))
		if _, err := os.Stat(bin); err == nil && !force {
			return nil, fmt.Errorf("%w at %s", ErrExists, bin)
		}
		name := u.Name
		if l.Recase {
			// The name itself, not dir: the escaped dir would be escaped
			// again when the plan is mapped back to its directory.
			name = strings.ToLower(name)
		}
		added[i] = Added{Plan: plan.Plan{Name: name, Height: u.Height}, Dir: dir, Bin: bin}
		if u.Height != 0 {
			ps = append(ps, added[i].Plan)
		}
	}
	if len(ps) > 0 {
		old, err := l.Scheduled()
		if err != nil {
			return nil, err
		}
		if _, err := l.MergeSchedule(old, ps, force); err != nil {
			return nil, err
		}
		if err := l.checkNotPast(ps, running); err != nil {
			return nil, err
		}
	}
	for i, u := range us {
		if err := InstallBinary(u.Exe, added[i].Bin, force); err != nil {
			return nil, err
		}
	}
	if len(ps) == 0 {
		return added, nil
	}
	return added, l.Schedule(ps, force)
}

// Running reports the latest block of the running node (from its RPC); nil
// when there is no way to ask.
type Running func() (int64, error)

// checkNotPast refuses plans at heights the node has already committed
// past: vigil would refuse to start the node for them. A running node holds
// its database; then its latest block is asked for, and a plan is refused
// only when it is certainly past (the app has committed the latest block or
// the one before). When neither can be read, the running vigil checks before
// it restarts the node with the new halt height.
func (l Layout) checkNotPast(ps []plan.Plan, running Running) error {
	c, err := l.CommittedHeight()
	what := "the node has already committed height"
	switch {
	case errors.Is(err, height.ErrInUse) && running != nil:
		latest, rerr := running()
		if rerr != nil {
			return nil
		}
		c, what = latest-1, "the running node has committed at least height"
	case errors.Is(err, height.ErrInUse):
		return nil
	case err != nil:
		return fmt.Errorf("scheduling at a height needs the node's committed height: %w", err)
	}
	for _, p := range ps {
		if p.Height < c {
			return fmt.Errorf("upgrade %s cannot be scheduled at height %d: %s %d", p.Name, p.Height, what, c)
		}
	}
	return nil
}
