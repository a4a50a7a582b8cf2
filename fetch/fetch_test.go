package fetch

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/plan"
)

// stall sends half of body and then nothing until the client gives up.
func stall(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

// chunked sends body without a Content-Length.
func chunked(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(body); i += 512 {
			w.Write(body[i:min(i+512, len(body))])
			w.(http.Flusher).Flush()
		}
	}
}

func httpStatus(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, http.StatusText(code), code) }
}

// TestFetchBadInput: each bad input fails with a clear error, installs
// nothing, leaves no staging and does not touch current; once the cause is
// fixed, a second Fetch succeeds.
func TestFetchBadInput(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2-good")
	goodTgz := gz(t, tarOf(t, member{name: "bin/app", body: good}))
	goodZip := zipOf(t, member{name: "app", body: good})
	zeros := make([]byte, 8<<20)

	type tc struct {
		name  string
		cfg   func(*Config)
		setup func(s *server) string // serves, returns the plan info
		want  []string
		path  string // the binary's path on the server; its hit count is checked
		hits  int    // requests to path by the failing fetch; -1 = at least 2 (retried)
		fix   func(s *server, info string) string
	}
	serveAt := func(path string, body []byte) func(*server, string) string {
		return func(s *server, info string) string { s.serve(path, body); return info }
	}
	newInfo := func(path string) func(*server, string) string {
		return func(s *server, _ string) string { s.serve(path, good); return binaries(s.url(path)) }
	}
	cases := []tc{
		{name: "no-platform", path: "/bin", hits: 0, want: []string{"no binary for this machine", "plan9/mips", "windows/amd64"},
			setup: func(s *server) string {
				s.serve("/bin", good)
				return fmt.Sprintf(`{"binaries": {"plan9/mips": %q, "windows/amd64": %q}}`, s.url("/bin"), s.url("/bin"))
			}, fix: newInfo("/bin")},
		{name: "malformed-info", path: "/bin", want: []string{"plan info", "not a {\"binaries\""},
			setup: func(s *server) string { return "hello world" }, fix: newInfo("/bin")},
		{name: "empty-info", path: "/bin", want: []string{"info is empty"},
			setup: func(s *server) string { return "  " }, fix: newInfo("/bin")},
		{name: "no-entries", path: "/bin", want: []string{`no "binaries" entries`},
			setup: func(s *server) string { return `{"binaries": {}}` }, fix: newInfo("/bin")},
		{name: "bad-scheme", path: "/bin", want: []string{`unsupported URL scheme "ftp"`},
			setup: func(s *server) string { return binaries("ftp://example.com/app") }, fix: newInfo("/bin")},
		{name: "forced-getter", path: "/bin", want: []string{"forces a go-getter protocol"},
			setup: func(s *server) string { return binaries("git::https://example.com/app.git") }, fix: newInfo("/bin")},
		{name: "indirection-garbage", path: "/bin", want: []string{"upgrade info document", "not a {\"binaries\"", "<html>"},
			setup: func(s *server) string {
				s.serve("/doc.json", []byte("<html>rate limited</html>"))
				return s.url("/doc.json")
			},
			fix: func(s *server, info string) string {
				s.serve("/doc.json", []byte(binaries(s.url("/bin"))))
				s.serve("/bin", good)
				return info
			}},
		{name: "indirection-404", path: "/bin", want: []string{"upgrade info document", "404"},
			setup: func(s *server) string { return s.url("/doc.json") },
			fix: func(s *server, info string) string {
				s.serve("/doc.json", []byte(binaries(s.url("/bin"))))
				s.serve("/bin", good)
				return info
			}},
		{name: "404", path: "/bin", hits: 1, want: []string{"/bin: HTTP 404"},
			setup: func(s *server) string { return binaries(s.url("/bin")) }, fix: serveAt("/bin", good)},
		{name: "403", path: "/bin", hits: 1, want: []string{"HTTP 403"},
			setup: func(s *server) string { s.handle("/bin", httpStatus(403)); return binaries(s.url("/bin")) }, fix: serveAt("/bin", good)},
		{name: "stall", path: "/bin", hits: -1, want: []string{"download stalled", "attempts"},
			cfg:   func(c *Config) { c.MaxTime = time.Second },
			setup: func(s *server) string { s.handle("/bin", stall(good)); return binaries(s.url("/bin")) },
			fix:   serveAt("/bin", good)},
		{name: "checksum-mismatch", path: "/bin", hits: 1, want: []string{"checksum mismatch", sha256hex(good)},
			setup: func(s *server) string {
				s.serve("/bin", binary1(t, "tampered"))
				return binaries(s.url("/bin?checksum=sha256:" + sha256hex(good)))
			}, fix: serveAt("/bin", good)},
		{name: "wrong-arch", path: "/bin", hits: 1, want: []string{"does not run here", "this machine is"},
			setup: func(s *server) string {
				s.serve("/bin", elfFor(otherMachine(), "arm", 4096))
				return binaries(s.url("/bin"))
			}, fix: serveAt("/bin", good)},
		{name: "html-page", path: "/bin", hits: 1, want: []string{"not a Linux program"},
			setup: func(s *server) string { s.serve("/bin", []byte("<html>login</html>")); return binaries(s.url("/bin")) },
			fix:   serveAt("/bin", good)},
		{name: "tar-symlink", path: "/a.tar.gz", hits: 1, want: []string{`"bin/app" is a symlink`},
			setup: func(s *server) string {
				s.serve("/a.tar.gz", gz(t, tarOf(t, member{name: "bin/app", typ: tar.TypeSymlink, link: "/bin/sh"})))
				return binaries(s.url("/a.tar.gz"))
			}, fix: serveAt("/a.tar.gz", goodTgz)},
		{name: "tar-hardlink", path: "/a.tar", hits: 1, want: []string{"hard link"},
			setup: func(s *server) string {
				s.serve("/a.tar", tarOf(t, member{name: "x", body: good}, member{name: "bin/app", typ: tar.TypeLink, link: "/etc/passwd"}))
				return binaries(s.url("/a.tar"))
			}, fix: serveAt("/a.tar", tarOf(t, member{name: "bin/app", body: good}))},
		{name: "zip-symlink", path: "/a.zip", hits: 1, want: []string{`"app" is a symlink`},
			setup: func(s *server) string {
				s.serve("/a.zip", zipOf(t, member{name: "app", typ: tar.TypeSymlink, link: "/bin/sh"}))
				return binaries(s.url("/a.zip"))
			}, fix: serveAt("/a.zip", goodZip)},
		{name: "tar-dotdot", path: "/a.tgz", hits: 1, want: []string{`"bin/../../evil" leaves`},
			setup: func(s *server) string {
				s.serve("/a.tgz", gz(t, tarOf(t, member{name: "bin/app", body: good}, member{name: "bin/../../evil", body: []byte("x")})))
				return binaries(s.url("/a.tgz"))
			}, fix: serveAt("/a.tgz", goodTgz)},
		{name: "zip-dotdot", path: "/a.zip", hits: 1, want: []string{`"../evil" leaves`},
			setup: func(s *server) string {
				s.serve("/a.zip", zipOf(t, member{name: "../evil", body: good}))
				return binaries(s.url("/a.zip"))
			}, fix: serveAt("/a.zip", goodZip)},
		{name: "tar-absolute", path: "/a.tar.gz", hits: 1, want: []string{"absolute path"},
			setup: func(s *server) string {
				s.serve("/a.tar.gz", gz(t, tarOf(t, member{name: "/tmp/evil", body: good})))
				return binaries(s.url("/a.tar.gz"))
			}, fix: serveAt("/a.tar.gz", goodTgz)},
		{name: "no-binary", path: "/a.tar.gz", hits: 1, want: []string{"holds no file"},
			setup: func(s *server) string {
				s.serve("/a.tar.gz", gz(t, tarOf(t, member{name: "bin/", typ: tar.TypeDir})))
				return binaries(s.url("/a.tar.gz"))
			}, fix: serveAt("/a.tar.gz", goodTgz)},
		{name: "two-candidates", path: "/a.zip", hits: 1, want: []string{"holds 2 files but no bin/app or app", "bin/appd", "bin/cli"},
			setup: func(s *server) string {
				s.serve("/a.zip", zipOf(t, member{name: "bin/appd", body: good}, member{name: "bin/cli", body: good}))
				return binaries(s.url("/a.zip"))
			}, fix: serveAt("/a.zip", goodZip)},
		{name: "bad-zip", path: "/a.zip", hits: 1, want: []string{"bad zip archive"},
			setup: func(s *server) string { s.serve("/a.zip", []byte("PK garbage")); return binaries(s.url("/a.zip")) },
			fix:   serveAt("/a.zip", goodZip)},
		{name: "zip-bomb", path: "/a.zip", hits: 1, want: []string{"unpacks to more than 1048576 bytes"},
			cfg: func(c *Config) { c.MaxUnpacked = 1 << 20 },
			setup: func(s *server) string {
				s.serve("/a.zip", zipOf(t, member{name: "app", body: zeros}))
				return binaries(s.url("/a.zip"))
			}, fix: serveAt("/a.zip", goodZip)},
		{name: "tgz-bomb", path: "/a.tgz", hits: 1, want: []string{"decompresses to more than 1048576 bytes"},
			cfg: func(c *Config) { c.MaxUnpacked = 1 << 20 },
			setup: func(s *server) string {
				s.serve("/a.tgz", gz(t, tarOf(t, member{name: "app", body: zeros})))
				return binaries(s.url("/a.tgz"))
			}, fix: serveAt("/a.tgz", goodTgz)},
		{name: "gz-bomb", path: "/app.gz", hits: 1, want: []string{"decompresses to more than 1048576 bytes"},
			cfg:   func(c *Config) { c.MaxUnpacked = 1 << 20 },
			setup: func(s *server) string { s.serve("/app.gz", gz(t, zeros)); return binaries(s.url("/app.gz")) },
			fix:   serveAt("/app.gz", gz(t, good))},
		{name: "too-many-files", path: "/a.tar", hits: 1, want: []string{"more than 3 members"},
			cfg: func(c *Config) { c.MaxFiles = 3 },
			setup: func(s *server) string {
				var ms []member
				for i := range 5 {
					ms = append(ms, member{name: fmt.Sprintf("f%d", i), body: []byte("x")})
				}
				s.serve("/a.tar", tarOf(t, ms...))
				return binaries(s.url("/a.tar"))
			}, fix: serveAt("/a.tar", tarOf(t, member{name: "bin/app", body: good}))},
		{name: "too-large", path: "/bin", hits: 1, want: []string{"too large", "Content-Length 4096"},
			cfg:   func(c *Config) { c.MaxDownload = 4000 },
			setup: func(s *server) string { s.serve("/bin", good); return binaries(s.url("/bin")) },
			fix:   serveAt("/bin", good[:3000])},
		{name: "too-large-chunked", path: "/bin", hits: 1, want: []string{"too large", "over 4000 bytes"},
			cfg:   func(c *Config) { c.MaxDownload = 4000 },
			setup: func(s *server) string { s.handle("/bin", chunked(good)); return binaries(s.url("/bin")) },
			fix:   serveAt("/bin", good[:3000])},
		{name: "must-checksum", path: "/bin", hits: 0, want: []string{"no checksum query parameter"},
			cfg:   func(c *Config) { c.MustHaveChecksum = true },
			setup: func(s *server) string { s.serve("/bin", good); return binaries(s.url("/bin")) },
			fix: func(s *server, _ string) string {
				return binaries(s.url("/bin?checksum=sha256:" + sha256hex(good)))
			}},
		{name: "must-checksum-indirection", path: "/bin", hits: 0, want: []string{"plan info", "no checksum query parameter"},
			cfg: func(c *Config) { c.MustHaveChecksum = true },
			setup: func(s *server) string {
				s.serve("/doc.json", []byte(binaries(s.url("/bin?checksum=sha256:"+sha256hex(good)))))
				s.serve("/bin", good)
				return s.url("/doc.json")
			},
			fix: func(s *server, _ string) string {
				doc := binaries(s.url("/bin?checksum=sha256:" + sha256hex(good)))
				return s.url("/doc.json?checksum=sha256:" + sha256hex([]byte(doc)))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			e := newEnv(t, c.cfg)
			info := c.setup(s)
			err := e.fetch(info)
			wantErr(t, err, c.want...)
			e.assertNothing()
			switch n := s.count(c.path); {
			case c.hits == -1 && n < 2:
				t.Errorf("%s requested %d times, want a retry", c.path, n)
			case c.hits >= 0 && n != c.hits:
				t.Errorf("%s requested %d times, want %d", c.path, n, c.hits)
			}

			info = c.fix(s, info)
			if err := e.fetch(info); err != nil {
				t.Fatalf("fetch after the fix: %v", err)
			}
			want := good
			if c.name == "too-large" || c.name == "too-large-chunked" {
				want = good[:3000]
			}
			e.assertInstalled(want)
		})
	}
}

// TestFetchFormats: every accepted form of info, URL, archive and checksum
// installs the right bytes.
func TestFetchFormats(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2-formats")
	local := filepath.Join(t.TempDir(), "appd-v2")
	must(t, os.WriteFile(local, good, 0o644))
	tgz := gz(t, tarOf(t, member{name: "bin/", typ: tar.TypeDir}, member{name: "bin/app", body: good},
		member{name: "README", body: []byte("read me")}, member{name: "lib/libfoo.so", body: []byte("lib")}))
	cases := []struct {
		name  string
		setup func(s *server) string
	}{
		{"bare", func(s *server) string { s.serve("/bin", good); return binaries(s.url("/bin")) }},
		{"any-key", func(s *server) string {
			s.serve("/bin", good)
			return fmt.Sprintf(`{"binaries": {"plan9/mips": "https://nowhere.invalid/x", "any": %q}}`, s.url("/bin"))
		}},
		{"platform-over-any", func(s *server) string {
			s.serve("/bin", good)
			return fmt.Sprintf(`{"binaries": {"any": "https://nowhere.invalid/x", "%s": %q}}`, platform(), s.url("/bin"))
		}},
		{"tar.gz-bin-name", func(s *server) string { s.serve("/r.tar.gz", tgz); return binaries(s.url("/r.tar.gz")) }},
		{"zip-name-at-root", func(s *server) string {
			s.serve("/r.zip", zipOf(t, member{name: "app", body: good}, member{name: "LICENSE", body: []byte("l")}))
			return binaries(s.url("/r.zip"))
		}},
		{"tar-bin-over-root", func(s *server) string {
			s.serve("/r.tar", tarOf(t, member{name: "app", body: binary1(t, "decoy")}, member{name: "bin/app", body: good}))
			return binaries(s.url("/r.tar"))
		}},
		{"single-file-other-name", func(s *server) string {
			s.serve("/r.tgz", gz(t, tarOf(t, member{name: "appd-v2.0.0-linux-amd64", body: good, mode: 0o644})))
			return binaries(s.url("/r.tgz"))
		}},
		{"gz-single", func(s *server) string { s.serve("/app.gz", gz(t, good)); return binaries(s.url("/app.gz")) }},
		{"archive-param", func(s *server) string { s.serve("/download", tgz); return binaries(s.url("/download?archive=tgz")) }},
		{"archive-false", func(s *server) string { s.serve("/app.zip", good); return binaries(s.url("/app.zip?archive=false")) }},
		{"sha256-archive", func(s *server) string {
			s.serve("/r.tar.gz", tgz)
			return binaries(s.url("/r.tar.gz?checksum=sha256:" + sha256hex(tgz)))
		}},
		{"sha512", func(s *server) string {
			s.serve("/bin", good)
			return binaries(s.url("/bin?checksum=sha512:" + sha512hex(good)))
		}},
		{"bare-hex-checksum", func(s *server) string {
			s.serve("/bin", good)
			return binaries(s.url("/bin?checksum=" + sha256hex(good)))
		}},
		{"checksum-file", func(s *server) string {
			s.serve("/appd", good)
			s.serve("/SHA256SUMS", []byte(sha256hex([]byte("other"))+"  other\n"+sha256hex(good)+"  appd\n"))
			return binaries(s.url("/appd?checksum=file:" + s.url("/SHA256SUMS")))
		}},
		{"indirection", func(s *server) string {
			s.serve("/bin", good)
			doc := binaries(s.url("/bin?checksum=sha256:" + sha256hex(good)))
			s.serve("/doc.json", []byte("\n"+doc+"\n"))
			return s.url("/doc.json?checksum=sha256:" + sha256hex([]byte("\n"+doc+"\n")))
		}},
		{"indirection-local-path", func(s *server) string {
			s.serve("/bin", good)
			doc := filepath.Join(t.TempDir(), "doc.json")
			must(t, os.WriteFile(doc, []byte(binaries(s.url("/bin"))), 0o644))
			return doc
		}},
		{"file-url", func(s *server) string { return binaries("file://" + local) }},
		{"absolute-path", func(s *server) string { return binaries(local) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			e := newEnv(t, func(c *Config) { c.MustHaveChecksum = false })
			if err := e.fetch(c.setup(s)); err != nil {
				t.Fatal(err)
			}
			e.assertInstalled(good)
		})
	}
	if st, err := os.Stat(local); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the local source changed: %v %v (a copy must be made, not a link)", st.Mode(), err)
	}
}

// TestFetchRetries503: three 503s then the file: it succeeds, each failure
// logged with the wait before the next attempt.
func TestFetchRetries503(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2")
	s := newServer(t)
	var mu sync.Mutex
	n := 0
	s.handle("/bin", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if k <= 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(good)
	})
	e := newEnv(t, nil)
	if err := e.fetch(binaries(s.url("/bin"))); err != nil {
		t.Fatal(err)
	}
	e.assertInstalled(good)
	if got := s.count("/bin"); got != 4 {
		t.Fatalf("%d requests, want 4", got)
	}
	log := e.log.String()
	if got := strings.Count(log, `msg="download attempt failed"`); got != 3 {
		t.Fatalf("%d failed attempts logged, want 3:\n%s", got, log)
	}
	if !strings.Contains(log, "HTTP 503") || !strings.Contains(log, "retry_in=") {
		t.Fatalf("attempt log lacks the status or the wait:\n%s", log)
	}
}

// TestFetchGivesUp: a server that is always down fails after MaxTime.
func TestFetchGivesUp(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.handle("/bin", httpStatus(http.StatusBadGateway))
	e := newEnv(t, func(c *Config) { c.MaxTime = 300 * time.Millisecond })
	err := e.fetch(binaries(s.url("/bin")))
	wantErr(t, err, "HTTP 502", "attempts")
	e.assertNothing()
	if n := s.count("/bin"); n < 2 {
		t.Fatalf("%d requests, want retries", n)
	}
}

// TestFetchConnectionRefused: nothing listening is transient and retried.
func TestFetchConnectionRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	addr := s.url("/bin")
	s.Close()
	e := newEnv(t, func(c *Config) { c.MaxTime = 200 * time.Millisecond })
	err := e.fetch(binaries(addr))
	wantErr(t, err, "connection refused", "attempts")
	e.assertNothing()
}

// TestFetchConcurrent: many callers for one upgrade, one download.
func TestFetchConcurrent(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2")
	s := newServer(t)
	release := make(chan struct{})
	s.handle("/bin", func(w http.ResponseWriter, r *http.Request) {
		<-release // hold the first download until every caller is waiting
		w.Write(good)
	})
	e := newEnv(t, nil)
	info := binaries(s.url("/bin"))
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { errs <- e.fetch(info) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.count("/bin") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.assertInstalled(good)
	if n := s.count("/bin"); n != 1 {
		t.Fatalf("%d downloads, want 1", n)
	}
}

// TestFetchAlreadyThere: an installed binary is never downloaded again.
func TestFetchAlreadyThere(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	e := newEnv(t, nil)
	mine := binary1(t, "by hand")
	writeFile(t, e.bin("v2"), mine, 0o755)
	res, err := e.f.Ensure(context.Background(), plan.Plan{Name: "v2", Height: 1, Info: binaries(s.url("/bin"))}, "v2")
	if err != nil || !res.Already || res.Path != e.bin("v2") {
		t.Fatalf("Ensure = %+v, %v; want Already at %s", res, err, e.bin("v2"))
	}
	if s.count("/bin") != 0 {
		t.Fatal("downloaded although the binary was there")
	}
	e.assertInstalled(mine)
}

// TestFetchExistingUpgradeDir: a folder with a marker (or a half-done manual
// copy) does not block the download, unlike cosmovisor.
func TestFetchExistingUpgradeDir(t *testing.T) {
	t.Parallel()
	good, s := serveBinary(t)
	e := newEnv(t, nil)
	marker := filepath.Join(e.l.UpgradeDir("v2"), "upgrade-info.json")
	writeFile(t, marker, []byte(`{"name":"v2","height":100}`), 0o644)
	writeFile(t, filepath.Join(e.l.UpgradeDir("v2"), "bin", ".app.partial"), []byte("half"), 0o644)
	if err := e.fetch(binaries(s.url("/bin"))); err != nil {
		t.Fatal(err)
	}
	e.assertInstalled(good)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("marker: %v", err)
	}
}

// TestFetchAppearsMeanwhile: a binary put in by hand during the download is
// kept; the download is dropped.
func TestFetchAppearsMeanwhile(t *testing.T) {
	t.Parallel()
	good, mine := binary1(t, "v2"), binary1(t, "by hand")
	s := newServer(t)
	e := newEnv(t, nil)
	s.handle("/bin", func(w http.ResponseWriter, r *http.Request) {
		writeFile(t, e.bin("v2"), mine, 0o755)
		w.Write(good)
	})
	res, err := e.f.Ensure(context.Background(), plan.Plan{Name: "v2", Height: 1, Info: binaries(s.url("/bin"))}, "v2")
	if err != nil || !res.Already {
		t.Fatalf("Ensure = %+v, %v; want Already", res, err)
	}
	e.assertInstalled(mine)
}

// TestFetchStaleStaging: staging left by a killed vigil is removed.
func TestFetchStaleStaging(t *testing.T) {
	t.Parallel()
	good, s := serveBinary(t)
	e := newEnv(t, nil)
	old := filepath.Join(e.l.Root(), ".staging", "v2", "tmp-123", "download")
	writeFile(t, filepath.Join(old, "bin"), []byte("partial"), 0o644)
	// An archive may have unpacked a folder without write permission.
	ro := filepath.Join(e.l.Root(), ".staging", "v2", "tmp-456", "unpacked", "ro")
	writeFile(t, filepath.Join(ro, "f"), nil, 0o644)
	must(t, os.Chmod(ro, 0o500))
	if err := e.fetch(binaries(s.url("/bin"))); err != nil {
		t.Fatal(err)
	}
	e.assertInstalled(good)
	// Once installed, nothing of the staging is left, the lock file included.
	if _, err := os.Lstat(filepath.Join(e.l.Root(), ".staging")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf(".staging left after a successful download: %v", err)
	}
}

// TestCleanStaging: what a killed download left is removed, unless another
// process holds that download's lock.
func TestCleanStaging(t *testing.T) {
	e := newEnv(t, nil)
	stage := filepath.Join(e.l.Root(), ".staging")
	for _, d := range []string{"v2/tmp-1", "v3"} {
		must(t, os.MkdirAll(filepath.Join(stage, d), 0o700))
		must(t, os.WriteFile(filepath.Join(stage, d, "..", "lock"), nil, 0o600))
	}
	busy, err := lockFile(context.Background(), filepath.Join(stage, "v3", "lock"))
	must(t, err)
	defer busy.Close()
	e.f.CleanStaging()
	if _, err := os.Lstat(filepath.Join(stage, "v2")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("v2's staging was not removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(stage, "v3", "lock")); err != nil {
		t.Fatalf("v3's staging, locked by a running download, was removed: %v", err)
	}
}

// TestFetchCancel: cancelling ctx stops a download at once and cleans up.
func TestFetchCancel(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.handle("/bin", stall(binary1(t, "v2")))
	e := newEnv(t, func(c *Config) { c.StallTimeout = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.f.Fetch(ctx, plan.Plan{Name: "v2", Height: 1, Info: binaries(s.url("/bin"))}, "v2") }()
	deadline := time.Now().Add(10 * time.Second)
	for s.count("/bin") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := testutil.Returned(t, done, "Fetch"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	e.assertNothing()
}

// TestFetchProgress: a slow download reports its progress in the log.
func TestFetchProgress(t *testing.T) {
	t.Parallel()
	good := elfFor(hostMachine(t), "big", 256<<10)
	s := newServer(t)
	s.handle("/bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(good)))
		for i := 0; i < len(good); i += 16 << 10 {
			w.Write(good[i:min(i+16<<10, len(good))])
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	e := newEnv(t, func(c *Config) { c.ProgressEvery = 50 * time.Millisecond })
	if err := e.fetch(binaries(s.url("/bin"))); err != nil {
		t.Fatal(err)
	}
	e.assertInstalled(good)
	log := e.log.String()
	if !strings.Contains(log, `msg=downloading`) || !strings.Contains(log, "total=262144") || !strings.Contains(log, "MiB/s") {
		t.Fatalf("no progress lines with bytes, total and rate:\n%s", log)
	}
}

// TestFetchBadDir: a directory name that would leave upgrades/ is refused.
func TestFetchBadDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, d := range []string{"", ".", "..", "../x", "a/b"} {
		if err := e.f.Fetch(context.Background(), plan.Plan{Name: "x", Height: 1, Info: "{}"}, d); err == nil {
			t.Errorf("Fetch(dir %q) succeeded", d)
		}
	}
}

func TestParseSource(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, archive, err string }{
		{"https://h/app", "", ""},
		{"https://h/app.tar.gz?checksum=sha256:00", "tar.gz", ""},
		{"https://h/app.tar.zst", "tar.zst", ""},
		{"https://h/app.gz", "gz", ""},
		{"https://h/x?archive=zip", "zip", ""},
		{"https://h/x.zip?archive=false", "", ""},
		{"https://h/x?archive=rar", "", "unknown archive type"},
		{"/opt/app.zip", "zip", ""},
		{"relative/app", "", "neither a URL nor an absolute path"},
		{"s3://bucket/app", "", "unsupported URL scheme"},
		{"https:///app", "", "no host"},
	} {
		s, err := parseSource(c.in, false)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseSource(%q) err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || s.archive != c.archive {
			t.Errorf("parseSource(%q) = %+v, %v; want archive %q", c.in, s, err, c.archive)
		}
	}
	s, err := parseSource("https://user:secret@h/app", false)
	if err != nil || strings.Contains(s.redacted, "secret") {
		t.Errorf("redacted %q (%v) shows the password", s.redacted, err)
	}
}
