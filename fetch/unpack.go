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
)

type limits struct {
	bytes int64 // total unpacked bytes
	files int   // archive members, directories included
}

// unpack turns the downloaded file into the staged binary: the file itself,
// or the binary picked from the archive it is. Every error is permanent.
func unpack(file, kind, dir, name string, lim limits) (string, error) {
	bin, err := unpackErr(file, kind, dir, name, lim)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("no space left to unpack in the staging folder: %w", err)
		}
		return "", permanent(err)
	}
	return bin, nil
}

func unpackErr(file, kind, dir, name string, lim limits) (string, error) {
	if kind == "" {
		return file, nil
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
		out := filepath.Join(dir, name)
		if err := inflate(kind, out, file, lim.bytes); err != nil {
			return "", err
		}
		return out, nil
	case "tar":
		if err := checkTar(file, lim); err != nil {
			return "", err
		}
		d := &getter.TarDecompressor{FilesLimit: lim.files + 1, FileSizeLimit: lim.bytes}
		if err := d.Decompress(dir, file, true, 0); err != nil {
			return "", fmt.Errorf("unpack tar: %w", err)
		}
	case "zip":
		if err := checkZip(file, lim); err != nil {
			return "", err
		}
		d := &getter.ZipDecompressor{FilesLimit: lim.files, FileSizeLimit: lim.bytes}
		if err := d.Decompress(dir, file, true, 0); err != nil {
			return "", fmt.Errorf("unpack zip: %w", err)
		}
	default:
		return "", fmt.Errorf("unknown archive type %q", kind)
	}
	os.Remove(file)
	return pick(dir, name)
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
// regular files, and returns the binary: bin/<name>, else <name> at the
// root, else the only file there is.
func pick(dir, name string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
		return "", err
	}
	for _, want := range []string{filepath.Join("bin", name), name} {
		if slices.Contains(files, want) {
			return filepath.Join(dir, want), nil
		}
	}
	switch len(files) {
	case 0:
		return "", errNoFile
	case 1:
		return filepath.Join(dir, files[0]), nil
	}
	shown := files
	if len(shown) > 5 {
		shown = append(shown[:5:5], "…")
	}
	return "", fmt.Errorf("the archive holds %d files but no bin/%s or %s, so it is unclear which is the binary: %s",
		len(files), name, name, strings.Join(shown, ", "))
}
