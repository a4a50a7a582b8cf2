// Package atomicfile replaces files and symbolic links so that a reader (or a
// crash) sees either the old or the new version, never a missing or
// half-written one.
//
// Both functions create a temporary name in the destination's own directory
// (rename(2) is only atomic within one filesystem), make it complete, rename it
// over the destination and fsync the directory so the rename itself survives a
// power loss. This is what vigil relies on for the `current` link and the
// upgrade markers; see design invariant 1.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically with the given permissions.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// Symlink points the link at path to target, atomically: a temporary link is
// created beside it and renamed over it, so there is never a moment without
// the link (removing and re-creating it, as `ln -sfn` does, leaves one).
// The rename fails if path is a real directory; callers check for that first
// so they can say why.
func Symlink(target, path string) error {
	dir := filepath.Dir(path)
	for range 10 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("link %s: %w", path, err)
		}
		tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(b[:]))
		err := os.Symlink(target, tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("link %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("link %s -> %s: %w", path, target, err)
		}
		return SyncDir(dir)
	}
	return fmt.Errorf("link %s: could not find a free temporary name", path)
}

// SyncDir fsyncs a directory so that renames and creations inside it are
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
