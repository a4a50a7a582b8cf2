// Package atomicfile replaces files and symbolic links so that a reader (or a
// crash) sees either the old or the new version, never a missing or
// half-written one.
//
// Every function creates a temporary name in the destination's own directory
// (rename(2) is only atomic within one filesystem), make it complete, rename it
// over the destination and fsync the directory so the rename itself survives a
// power loss. This is what vigil relies on for the `current` link and the
// upgrade markers; see design invariant 1.
package atomicfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WriteFile writes data to path atomically and durably with the given
// permissions.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return WriteFrom(path, bytes.NewReader(data), perm)
}

// WriteFrom is WriteFile with the content streamed from r (a binary being
// installed need not be held in memory).
func WriteFrom(path string, r io.Reader, perm fs.FileMode) error {
	if err := write(path, r, perm, true, os.Rename); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Replace writes data to path atomically but not durably: a reader never
// sees a half-written file, but after a power loss the old content (or
// none) may be back. For files that are rewritten often and rebuilt at the
// next start (the status file), where two fsyncs per write would only slow
// the writes that must be durable (the marker, `current`).
func Replace(path string, data []byte, perm fs.FileMode) error {
	return write(path, bytes.NewReader(data), perm, false, os.Rename)
}

// WriteNew writes data to path atomically and durably unless something is
// already there, which it never replaces: the complete file is hard-linked
// to its name (link(2) fails if the name is taken). It reports whether it
// wrote.
func WriteNew(path string, data []byte, perm fs.FileMode) (bool, error) {
	err := write(path, bytes.NewReader(data), perm, true, func(tmp, path string) error {
		err := os.Link(tmp, path)
		os.Remove(tmp)
		return err
	})
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, SyncDir(filepath.Dir(path))
}

// write makes the complete file under a temporary name beside path, then
// place puts it at path.
func write(path string, r io.Reader, perm fs.FileMode, durable bool, place func(tmp, path string) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
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
	if _, err = io.Copy(f, r); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("write %s: sync: %w", path, err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = place(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Symlink points the link at path to target, atomically: a temporary link is
// created beside it and renamed over it, so there is never a moment without
// the link (removing and re-creating it, as `ln -sfn` does, leaves one).
// The rename fails if path is a real directory; callers check for that first
// so they can say why.
func Symlink(target, path string) error {
	if err := ReplaceSymlink(target, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// ReplaceSymlink is Symlink without the fsync of the directory: atomic for
// readers, durable only once the caller syncs the directory. For a caller
// with something more urgent to do first (start the upgraded node).
func ReplaceSymlink(target, path string) error {
	dir := filepath.Dir(path)
	for range 10 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("link %s: %w", path, err)
		}
		tmp := filepath.Join(dir, tempPrefix(path)+hex.EncodeToString(b[:]))
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
		return nil
	}
	return fmt.Errorf("link %s: could not find a free temporary name", path)
}

// tempPrefix is the name every temporary file for path starts with, in
// path's directory.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// RemoveTemps removes the temporary files that a WriteFile or Symlink of path
// killed half-way left beside it, and returns their paths. The caller makes
// sure no such write of path runs meanwhile.
func RemoveTemps(path string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	prefix := tempPrefix(path)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) || e.IsDir() {
			continue
		}
		p := filepath.Join(filepath.Dir(path), e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
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
