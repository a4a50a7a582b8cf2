//go:build linux

package watcher

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statfsType returns statfs(2) f_type for path. The field's Go type differs
// between architectures (int64, int32, uint32); the magic numbers are 32 bit.
func statfsType(path string) (uint32, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return uint32(st.Type), nil
}
