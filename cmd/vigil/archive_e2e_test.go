//go:build linux

package main

// End-to-end test of an archive download: a CosmWasm-style release (bin/, lib/libwasmvm, a
// README) is installed whole under upgrades/v2 at the halt, and v2 runs.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"strings"
	"testing"
)

// tarGz builds a .tar.gz of the given members (path → body, mode), in order; a path ending in
// "/" is a folder.
func tarGz(t testing.TB, members ...struct {
	name string
	body []byte
	mode int64
}) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	must(t, err)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: m.mode, Size: int64(len(m.body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(m.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		must(t, tw.WriteHeader(h))
		_, err := tw.Write(m.body)
		must(t, err)
	}
	must(t, tw.Close())
	must(t, zw.Close())
	return buf.Bytes()
}

// TestE2EDownloadArchiveWithLib: the halt's info names a .tar.gz holding bin/app,
// lib/libwasmvm.x86_64.so and a README; vigil installs all three under upgrades/v2 (the library
// with its mode), switches, and v2 runs.
func TestE2EDownloadArchiveWithLib(t *testing.T) {
	t.Parallel()
	s := newDLServer(t)
	bin := readFakeBin(t)
	lib := []byte("\x7fELF not really libwasmvm")
	archive := tarGz(t, []struct {
		name string
		body []byte
		mode int64
	}{
		{"bin/", nil, 0o755},
		{"bin/" + daemonName, bin, 0o755},
		{"lib/", nil, 0o755},
		{"lib/libwasmvm.x86_64.so", lib, 0o644},
		{"README.md", []byte("v2 release\n"), 0o644},
	}...)
	s.put("/app-v2-linux.tar.gz", archive)
	v2 := v2Quiet()
	v2["log_env"] = []string{"LD_LIBRARY_PATH"}
	h, v := downloadAtHalt(t, binInfo(s.URL+"/app-v2-linux.tar.gz", archive), v2)
	h.assertDownloaded(bin)
	for _, f := range []struct {
		rel  string
		body []byte
		mode os.FileMode
	}{
		{"lib/libwasmvm.x86_64.so", lib, 0o644},
		{"README.md", []byte("v2 release\n"), 0o644},
	} {
		p := h.root("upgrades", "v2", f.rel)
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.body) {
			t.Fatalf("%s from the archive: %q, %v", f.rel, got, err)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.rel, st.Mode().Perm(), f.mode)
		}
	}
	v.assertMsgs("downloading upgrade binary", "upgrade binary downloaded", "switched")
	if n := s.count("/app-v2-linux.tar.gz"); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}

	// The node finds its lib/ without the unit setting LD_LIBRARY_PATH.
	want := "v2 env LD_LIBRARY_PATH=" + h.root("upgrades", "v2", "lib")
	var got []string
	for _, l := range h.fakeLog() {
		if strings.HasPrefix(l, "v2 env LD_LIBRARY_PATH") {
			got = append(got, l)
		}
	}
	if len(got) != 1 {
		t.Fatalf("v2 logged LD_LIBRARY_PATH %d times (%q), want once", len(got), got)
	}
	if got[0] != want && !strings.HasPrefix(got[0], want+":") {
		t.Errorf("v2 started with %q, want %q first", got[0], want)
	}
	if code := v.stop(); code != v2TermCode {
		t.Fatalf("vigil exit code %d, want %d", code, v2TermCode)
	}
}
