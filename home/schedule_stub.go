package home

// TEMPORARY stub until wt-batch lands.

import (
	"os"
	"path/filepath"

	"github.com/vigilhq/vigil/internal/atomicfile"
	"github.com/vigilhq/vigil/plan"
)

func (l Layout) BatchFile() string { return filepath.Join(l.DataDir(), plan.BatchFileName) }

func (l Layout) Scheduled() ([]plan.Plan, error) { return plan.ReadBatch(l.BatchFile()) }

func (l Layout) Schedule(ps []plan.Plan, force bool) error {
	old, err := l.Scheduled()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.BatchFile(), plan.MarshalBatch(append(old, ps...)), 0o600)
}

func (l Layout) Unschedule(p plan.Plan) error {
	old, err := l.Scheduled()
	if err != nil {
		return err
	}
	var keep []plan.Plan
	for _, o := range old {
		if o.Name != p.Name || o.Height != p.Height {
			keep = append(keep, o)
		}
	}
	if len(keep) == 0 {
		return os.Remove(l.BatchFile())
	}
	return atomicfile.WriteFile(l.BatchFile(), plan.MarshalBatch(keep), 0o600)
}
