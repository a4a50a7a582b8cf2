package fetch

import (
	"archive/tar"
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	getter "github.com/hashicorp/go-getter/v2"

	"github.com/vigilhq/vigil/plan"
)

type limits struct {
	bytes int64 // total unpacked bytes
	files int   // archive members, directories included
}

// umask is applied to the modes of unpacked members: nothing installed from
// an archive is writable by group or others.
const umask = 0o022

// unpack turns the downloaded file into a staged tree laid out as
// upgrades/<dir>/ will be, with the binary at bin/<name>: the file itself
// (a bare binary or a compressed single file), the whole archive (holding
// bin/<name>, or <name> at its top, which is moved to bin/), or the only file
// of an archive, whatever its name and folder. It returns the tree's folder.
// Every error is permanent.
func unpack(file, kind, dir, name string, lim limits) (string, error) {
	tree, err := unpackErr(file, kind, dir, name, lim)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("no space left to unpack in the staging folder: %w", err)
		}
		return "", permanent(err)
	}
	return tree, nil
}

func unpackErr(file, kind, dir, name string, lim limits) (string, error) {
	binDir := filepath.Join(dir, "bin")
	if kind == "" {
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			return "", err
		}
		return dir, os.Rename(file, filepath.Join(binDir, name))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// A compressed tar is first inflated to a plain tar beside it, so its
	// member list can be checked by seeking (no second inflation).
	if outer, ok := strings.CutPrefix(kind, "tar."); ok || slices.Contains([]string{"tgz", "tbz2", "txz", "tzst"}, kind) {
		if !ok {
			outer = map[string]string{"tgz": "gz", "tbz2": "bz2", "txz": "xz", "tzst": "zst"}[kind]
		}
		plain := file + ".tar"
		if err := inflate(outer, plain, file, lim.bytes); err != nil {
			return "", err
		}
		os.Remove(file) // room for the unpacked copy
		file, kind = plain, "tar"
	}
	switch kind {
	case "gz", "bz2", "xz", "zst":
		// A compressed single file: the binary, whatever its name.
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			return "", err
		}
		if err := inflate(kind, filepath.Join(binDir, name), file, lim.bytes); err != nil {
			return "", err
		}
		return dir, nil
	case "tar":
		if err := checkTar(file, lim); err != nil {
			return "", err
		}
		d := &getter.TarDecompressor{FilesLimit: lim.files + 1, FileSizeLimit: lim.bytes}
		if err := d.Decompress(dir, file, true, umask); err != nil {
			return "", fmt.Errorf("unpack tar: %w", err)
		}
	case "zip":
		if err := checkZip(file, lim); err != nil {
			return "", err
		}
		d := &getter.ZipDecompressor{FilesLimit: lim.files, FileSizeLimit: lim.bytes}
		if err := d.Decompress(dir, file, true, umask); err != nil {
			return "", fmt.Errorf("unpack zip: %w", err)
		}
	default:
		return "", fmt.Errorf("unknown archive type %q", kind)
	}
	os.Remove(file)
	rel, whole, err := pick(dir, name)
	if err != nil {
		return "", err
	}
	want := filepath.Join("bin", name)
	switch {
	case rel == want:
		return dir, nil
	case whole: // <name> at the top: to bin/, as cosmovisor does
		if st, err := os.Lstat(binDir); err == nil && !st.IsDir() {
			return "", fmt.Errorf("the archive holds %s at its top and a file named bin, so %s has no place: refused", name, want)
		}
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			return "", err
		}
		return dir, os.Rename(filepath.Join(dir, rel), filepath.Join(dir, want))
	default: // the only file: it alone is installed, as bin/<name>
		single := dir + "-single"
		if err := os.MkdirAll(filepath.Join(single, "bin"), 0o755); err != nil {
			return "", err
		}
		return single, os.Rename(filepath.Join(dir, rel), filepath.Join(single, want))
	}
}

// inflate decompresses a single-file stream with go-getter's decompressor.
// Those cut the output at their limit without an error, so the limit is set
// one byte higher and reaching it is the error.
func inflate(kind, dst, src string, limit int64) error {
	var d getter.Decompressor
	switch kind {
	case "gz":
		d = &getter.GzipDecompressor{FileSizeLimit: limit + 1}
	case "bz2":
		d = &getter.Bzip2Decompressor{FileSizeLimit: limit + 1}
	case "xz":
		d = &getter.XzDecompressor{FileSizeLimit: limit + 1}
	case "zst":
		d = &getter.ZstdDecompressor{FileSizeLimit: limit + 1}
	default:
		return fmt.Errorf("unknown compression %q", kind)
	}
	if err := d.Decompress(dst, src, false, 0); err != nil {
		return fmt.Errorf("decompress %s: %w", kind, err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		return err
	}
	if st.Size() > limit {
		return fmt.Errorf("decompresses to more than %d bytes: refused (a decompression bomb?)", limit)
	}
	return nil
}

// memberName refuses names that would land outside the unpack folder.
func memberName(name string) error {
	if name == "" {
		return errors.New("archive member with an empty name")
	}
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || filepath.IsAbs(name) {
		return fmt.Errorf("archive member %q has an absolute path: refused", name)
	}
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return fmt.Errorf("archive member %q leaves the archive's folder: refused", name)
		}
	}
	return nil
}

// checkTar reads the member list (seeking over contents) and refuses
// anything go-getter would unpack unsafely or that breaks the limits.
// go-getter v2.2.5 writes symlink and hard-link members as regular files
// and does not look at device types, so they are refused here.
func checkTar(path string, lim limits) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var files, regular int
	var size int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("bad tar archive: %w", err)
		}
		if err := memberName(h.Name); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeReg:
			regular++
		case tar.TypeDir:
		case tar.TypeSymlink:
			return fmt.Errorf("archive member %q is a symlink (to %q): refused", h.Name, h.Linkname)
		case tar.TypeLink:
			return fmt.Errorf("archive member %q is a hard link (to %q): refused", h.Name, h.Linkname)
		default:
			return fmt.Errorf("archive member %q has unsupported type %q: refused", h.Name, h.Typeflag)
		}
		files++
		size += h.Size
		if err := lim.check(files, size); err != nil {
			return err
		}
	}
	if regular == 0 {
		return errNoFile
	}
	return nil
}

var errNoFile = errors.New("the archive holds no file")

func checkZip(path string, lim limits) error {
	r, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("bad zip archive: %w", err)
	}
	defer r.Close()
	var size int64
	regular := 0
	for i, f := range r.File {
		if err := memberName(f.Name); err != nil {
			return err
		}
		m := f.Mode()
		switch {
		case m&fs.ModeSymlink != 0:
			return fmt.Errorf("archive member %q is a symlink: refused", f.Name)
		case !m.IsRegular() && !m.IsDir():
			return fmt.Errorf("archive member %q has unsupported type %s: refused", f.Name, m.Type())
		case m.IsRegular():
			regular++
		}
		// archive/zip fails a read past the declared size, so the declared
		// sizes bound what unpacking writes.
		if f.UncompressedSize64 > uint64(lim.bytes) {
			return lim.check(i+1, lim.bytes+1)
		}
		size += int64(f.UncompressedSize64)
		if err := lim.check(i+1, size); err != nil {
			return err
		}
	}
	if regular == 0 {
		return errNoFile
	}
	return nil
}

func (l limits) check(files int, size int64) error {
	if files > l.files {
		return fmt.Errorf("the archive has more than %d members: refused", l.files)
	}
	if size > l.bytes {
		return fmt.Errorf("the archive unpacks to more than %d bytes: refused (a decompression bomb?)", l.bytes)
	}
	return nil
}

// pick walks the unpacked tree, refusing anything but directories and
// regular files, and returns the binary's path in it: bin/<name>, else
// <name> at the top (whole: the archive is installed whole), else the only
// file there is (installed alone). A folder wrapping everything is not
// looked into: cosmovisor installs an archive as it is, too.
func pick(dir, name string) (rel string, whole bool, err error) {
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("unpacked %q lies outside the unpack folder: refused", p)
		}
		switch t := d.Type(); {
		case t.IsDir():
		case t.IsRegular():
			files = append(files, rel)
		default:
			return fmt.Errorf("unpacked %q is a %s: refused", rel, t)
		}
		return nil
	})
	if err != nil {
		return "", false, err
	}
	for _, want := range []string{filepath.Join("bin", name), name} {
		if slices.Contains(files, want) {
			if slices.Contains(files, plan.FileName) {
				return "", false, fmt.Errorf("the archive holds %s at its top, which would pose as vigil's record of the installed upgrade: refused", plan.FileName)
			}
			return want, true, nil
		}
	}
	switch len(files) {
	case 0:
		return "", false, errNoFile
	case 1:
		return files[0], false, nil
	}
	shown := files
	if len(shown) > 5 {
		shown = append(shown[:5:5], "…")
	}
	hint := ""
	if top, _, ok := strings.Cut(files[0], "/"); ok && !slices.ContainsFunc(files, func(f string) bool { return !strings.HasPrefix(f, top+"/") }) {
		hint = fmt.Sprintf(" (everything is inside %s/: like cosmovisor, vigil installs an archive as it is, so bin/%s must be at its top)", top, name)
	}
	return "", false, fmt.Errorf("the archive holds %d files but no bin/%s or %s, so it is unclear which is the binary: %s%s",
		len(files), name, name, strings.Join(shown, ", "), hint)
}
