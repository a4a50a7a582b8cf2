package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// An archive is installed whole: everything in it lands in upgrades/<dir>/
// (bin/, lib/ with libwasmvm, READMEs), as cosmovisor unpacks it there. The
// reactor takes the presence of bin/<name> as "ready", so the binary is
// renamed into place last, after everything else is in place and durable: a
// node never starts from a binary whose lib/ is still missing.
//
// Nothing placed by hand is replaced. bin/<name> present means nothing is
// downloaded at all. Otherwise the staged tree is merged into upgrades/<dir>:
// a folder missing there moves in whole, a folder present is merged into
// (also when it is a link to a folder, which the operator made), a file
// present with the same bytes is left as it is (so an install interrupted
// between two renames completes on the next try), and any other clash (a
// file with other bytes, a file where the archive has a folder or the
// reverse) refuses the whole download before anything is moved, naming the
// paths. Files in upgrades/<dir> that the archive does not hold are left alone.

// tempPrefix starts the names of the copies made when upgrades/ is another
// filesystem than the staging folder.
const tempPrefix = ".vigil-download-"

// move is one rename of an install.
type move struct{ from, to string }

// settle readies the staged tree: folders get u+rwx (they are renamed, and
// removed on failure), and every file and folder is fsynced so that what is
// renamed into place is complete on disk. It counts the regular files.
func settle(tree string) (int, error) {
	// The tree's own folder becomes upgrades/<dir> when that is missing.
	if err := os.Chmod(tree, 0o755); err != nil {
		return 0, err
	}
	files := 0
	var dirs []string
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			st, err := d.Info()
			if err != nil {
				return err
			}
			dirs = append(dirs, p)
			if p == tree {
				return nil
			}
			return os.Chmod(p, st.Mode().Perm()|0o700)
		}
		files++
		return syncFile(p)
	})
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		if err := syncFile(d); err != nil {
			return 0, err
		}
	}
	return files, nil
}

func syncFile(path string) error {
	fl, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fl.Close()
	if err := fl.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// install moves the staged tree into target (upgrades/<dir>) by renames
// that never replace anything, bin/<name> last. It reports false when a
// binary was put at bin/<name> by someone else first.
func (f *Fetcher) install(tree, target, name string) (bool, error) {
	bin := filepath.Join(target, "bin", name)
	// The binary is taken out of the tree: it is moved on its own, last.
	staged := tree + ".binary"
	if err := os.Rename(filepath.Join(tree, "bin", name), staged); err != nil {
		return false, err
	}
	removeTemps(target)

	// upgrades/ itself is missing in a home that has only genesis; each
	// folder created must be made durable in its parent.
	var created []string
	for d := filepath.Dir(target); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		created = append(created, d)
	}
	undo := func() {
		for _, d := range created { // deepest first; only if still empty
			os.Remove(d)
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		undo()
		return false, fmt.Errorf("create %s: %w", filepath.Dir(target), err)
	}

	moves, conflicts, err := planMoves(tree, target)
	if err == nil && len(conflicts) > 0 {
		err = permanent(fmt.Errorf("%s already holds what the download would replace: %s; vigil never overwrites files placed there: remove them, or put the upgrade in place by hand (bin/%s)",
			target, strings.Join(conflicts, ", "), name))
	}
	if err != nil {
		undo()
		return false, err
	}
	if present(bin) {
		undo()
		return false, nil
	}
	moves = append(moves, move{staged, bin})

	err = f.apply(moves)
	if errors.Is(err, unix.EXDEV) {
		// upgrades/ is on another filesystem than the staging folder (a
		// mount under cosmovisor/): copy to its side first.
		var tmp string
		moves, tmp, err = copyAcross(moves, target)
		if tmp != "" {
			defer removeAll(tmp)
		}
		if err == nil {
			err = f.apply(moves)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		if present(bin) {
			return false, nil // put there by hand meanwhile: kept
		}
		err = fmt.Errorf("a file appeared in %s while installing: %w", target, err)
	}
	if err != nil {
		if errors.Is(err, unix.ENOSPC) {
			err = permanent(fmt.Errorf("no space left to install in %s: %w", target, err))
		}
		undo()
		return false, err
	}
	syncDir(filepath.Dir(bin))
	for _, d := range created {
		syncDir(filepath.Dir(d))
	}
	return true, nil
}

// apply makes the renames in order; before the last one (the binary) the
// folders that received the others are fsynced, so that after a crash the
// binary is never there without them. A failure stops at once; what was
// moved stays (it is harmless without the binary, and the next install
// finds identical files and completes).
func (f *Fetcher) apply(moves []move) error {
	synced := map[string]bool{}
	for i, m := range moves {
		if i == len(moves)-1 {
			for _, p := range moves[:i] {
				if d := filepath.Dir(p.to); !synced[d] {
					syncDir(d)
					synced[d] = true
				}
			}
		}
		rename := renameNoReplace
		if f.rename != nil {
			rename = f.rename
		}
		if err := rename(m.from, m.to); err != nil {
			return err
		}
	}
	return nil
}

// planMoves lists the renames that put tree's contents into target without
// replacing anything (see the comment at the top), and the paths that clash.
func planMoves(tree, target string) ([]move, []string, error) {
	st, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(target); lerr == nil {
			return nil, []string{target + " (a dangling link)"}, nil
		}
		return []move{{tree, target}}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return nil, []string{target + " (not a folder)"}, nil
	}
	var moves []move
	var conflicts []string
	err = planDir(tree, target, ".", &moves, &conflicts)
	return moves, conflicts, err
}

func planDir(tree, target, rel string, moves *[]move, conflicts *[]string) error {
	ents, err := os.ReadDir(filepath.Join(tree, rel))
	if err != nil {
		return err
	}
	for _, e := range ents {
		r := filepath.Join(rel, e.Name())
		from, to := filepath.Join(tree, r), filepath.Join(target, r)
		st, err := os.Stat(to)
		if errors.Is(err, fs.ErrNotExist) {
			if _, lerr := os.Lstat(to); lerr == nil {
				*conflicts = append(*conflicts, r+" (a dangling link)")
				continue
			}
			*moves = append(*moves, move{from, to})
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case e.IsDir() && st.IsDir():
			if err := planDir(tree, target, r, moves, conflicts); err != nil {
				return err
			}
		case e.Type().IsRegular() && st.Mode().IsRegular():
			same, err := sameContent(from, to)
			if err != nil {
				return err
			}
			if !same {
				*conflicts = append(*conflicts, r+" (differs)")
			}
		case e.IsDir():
			*conflicts = append(*conflicts, r+" (not a folder there)")
		default:
			*conflicts = append(*conflicts, r+" (a folder there)")
		}
	}
	return nil
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	sa, err := fa.Stat()
	if err != nil {
		return false, err
	}
	sb, err := fb.Stat()
	if err != nil {
		return false, err
	}
	if sa.Size() != sb.Size() {
		return false, nil
	}
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea != nil || eb != nil {
			return errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF), nil
		}
	}
}

// copyAcross copies each move's source into a temporary folder on the
// destination's filesystem (inside target, or beside it when it does not
// exist yet) and returns the moves from there.
func copyAcross(moves []move, target string) ([]move, string, error) {
	parent, prefix := target, tempPrefix
	if _, err := os.Stat(target); err != nil {
		parent, prefix = filepath.Dir(target), tempPrefix+filepath.Base(target)+"!"
	}
	tmp, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, "", err
	}
	out := make([]move, len(moves))
	for i, m := range moves {
		dst := filepath.Join(tmp, strconv.Itoa(i))
		if err := copyTree(m.from, dst); err != nil {
			return nil, tmp, err
		}
		out[i] = move{dst, m.to}
	}
	if err := syncFile(tmp); err != nil {
		return nil, tmp, err
	}
	return out, tmp, nil
}

// copyTree copies a file or a folder of folders and regular files, with
// their modes, durably.
func copyTree(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		st, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, to)
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
			return os.Chmod(to, st.Mode().Perm()|0o700)
		}
		return copyFile(p, to, st.Mode().Perm())
	})
	for _, d := range dirs {
		if err == nil {
			err = syncFile(d)
		}
	}
	return err
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = out.ReadFrom(in)
	if err == nil {
		err = out.Chmod(mode) // the process umask applied at creation
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeTemps removes the copies an install killed half-way left, in target
// and beside it; the caller holds the upgrade's lock.
func removeTemps(target string) {
	for _, at := range []struct{ dir, prefix string }{
		{target, tempPrefix},
		// "!" is never in a directory name (url.PathEscape escapes it), so
		// another upgrade's temporary copy never matches.
		{filepath.Dir(target), tempPrefix + filepath.Base(target) + "!"},
	} {
		ents, _ := os.ReadDir(at.dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), at.prefix) {
				removeAll(filepath.Join(at.dir, e.Name()))
			}
		}
	}
}

// renameNoReplace renames from to to unless something is at to.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without RENAME_NOREPLACE: the check and the rename
		// are not atomic, but the per-dir lock covers vigil's own writers.
		if _, serr := os.Lstat(to); serr == nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
		}
		return os.Rename(from, to)
	}
	if errors.Is(err, unix.EEXIST) {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
