//go:build linux

package main

// End-to-end tests of downloads: vigil fetches the upgrade binary named by the plan's info from
// a local HTTP server, at the halt or ahead of it (prefetch, with the server also playing the
// node's CometBFT RPC), and `vigil prepare-upgrade`.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// dlServer serves binaries and, at /abci_query, a node's answer to the CurrentPlan query.
type dlServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	plan  []byte // encoded QueryCurrentPlanResponse; nil = no plan
	hits  map[string]int
}

func newDLServer(t testing.TB) *dlServer {
	s := &dlServer{files: map[string][]byte{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		body, ok := s.files[r.URL.Path]
		plan := s.plan
		s.mu.Unlock()
		if r.URL.Path == "/abci_query" {
			value := "null"
			if plan != nil {
				value = `"` + base64.StdEncoding.EncodeToString(plan) + `"`
			}
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":-1,"result":{"response":{"code":0,"log":"","value":%s,"height":"90"}}}`, value)
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *dlServer) put(path string, body []byte) {
	s.mu.Lock()
	s.files[path] = body
	s.mu.Unlock()
}

func (s *dlServer) schedule(name string, height int64, info string) {
	var p []byte
	p = protowire.AppendTag(p, 1, protowire.BytesType)
	p = protowire.AppendString(p, name)
	p = protowire.AppendTag(p, 3, protowire.VarintType)
	p = protowire.AppendVarint(p, uint64(height))
	p = protowire.AppendTag(p, 4, protowire.BytesType)
	p = protowire.AppendString(p, info)
	var r []byte
	r = protowire.AppendTag(r, 1, protowire.BytesType)
	r = protowire.AppendBytes(r, p)
	s.mu.Lock()
	s.plan = r
	s.mu.Unlock()
}

func (s *dlServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// binInfo is a plan info naming url for this platform, with the sha256 of body.
func binInfo(url string, body []byte) string {
	sum := sha256.Sum256(body)
	b, _ := json.Marshal(map[string]any{"binaries": map[string]string{
		runtime.GOOS + "/" + runtime.GOARCH: url + "?checksum=sha256:" + hex.EncodeToString(sum[:]),
	}})
	return string(b)
}

func infoJSON(name string, height int64, info string) string {
	b, _ := json.Marshal(map[string]any{"name": name, "time": "0001-01-01T00:00:00Z", "height": height, "info": info})
	return string(b)
}

func readFakeBin(t testing.TB) []byte {
	b, err := os.ReadFile(fakeBin)
	must(t, err)
	return b
}

func (h *nodeHome) assertDownloaded(want []byte) {
	h.t.Helper()
	bin := h.root("upgrades", "v2", "bin", daemonName)
	got, err := os.ReadFile(bin)
	if err != nil {
		h.t.Fatalf("downloaded binary: %v", err)
	}
	if string(got) != string(want) {
		h.t.Fatalf("downloaded binary differs from the served one (%d vs %d bytes)", len(got), len(want))
	}
	if st, _ := os.Stat(bin); st.Mode().Perm() != 0o755 {
		h.t.Fatalf("downloaded binary mode %v, want 0755", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(h.root(".staging", "v2"))
	for _, e := range ents {
		if e.Name() != "lock" {
			h.t.Fatalf("staging left: %s", e.Name())
		}
	}
}

// TestE2EDownloadAtHalt: the node halts with info pointing at a server; no binary on disk; vigil
// downloads, verifies, switches and v2 runs.
// downloadAtHalt runs vigil with downloads on (checksums required, no
// prefetch) over a home whose genesis halts for v2 with info, without
// upgrades/v2, and waits until v2, behaving as v2beh, has started from the
// download.
func downloadAtHalt(t *testing.T, info string, v2beh obj) (*nodeHome, *vigilProc) {
	t.Helper()
	halt := obj{"name": "v2", "height": 100, "after": "50ms", "write": "inplace", "then": "stay", "content": infoJSON("v2", 100, info)}
	h := newHome(t, obj{"genesis": obj{"halt": halt}, "v2": v2beh})
	must(t, os.RemoveAll(h.root("upgrades", "v2")))
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true",
		"DAEMON_ALLOW_DOWNLOAD_BINARIES=true", "DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM=true", "VIGIL_PREFETCH_INTERVAL=0")
	v.waitLog(startLine("v2"))
	h.assertOrder(startLine("genesis"), "genesis halt v2", "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
	h.assertCurrent("upgrades/v2")
	h.assertMarker("v2", "v2", 100)
	return h, v
}

func TestE2EDownloadAtHalt(t *testing.T) {
	t.Parallel()
	s := newDLServer(t)
	bin := readFakeBin(t)
	s.put("/app", bin)
	h, v := downloadAtHalt(t, binInfo(s.URL+"/app", bin), v2Quiet())
	h.assertDownloaded(bin)
	v.assertMsgs("downloading upgrade binary", "upgrade binary downloaded", "switched")
	if n := s.count("/app"); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
	// A download that worked must be used at once, not after a retry.
	if n := v.countMsg("upgrade not ready"); n != 0 {
		t.Errorf("a successful download was reported as %q %d time(s): the halt waited for a retry", "upgrade not ready", n)
	}
	v.stopWant(v2TermCode)
}

// TestE2EDownloadFailsThenFixed: a 404 at the halt neither stops vigil nor the old node; once the
// file is on the server, the reactor's retry picks it up.
func TestE2EDownloadFailsThenFixed(t *testing.T) {
	t.Parallel()
	s := newDLServer(t)
	bin := readFakeBin(t)
	content := infoJSON("v2", 100, binInfo(s.URL+"/app", bin))
	halt := obj{"name": "v2", "height": 100, "after": "50ms", "write": "inplace", "then": "stay", "content": content}
	h := newHome(t, obj{"genesis": obj{"halt": halt}, "v2": v2Quiet()})
	must(t, os.RemoveAll(h.root("upgrades", "v2")))

	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true",
		"DAEMON_ALLOW_DOWNLOAD_BINARIES=true", "VIGIL_PREFETCH_INTERVAL=0")
	v.waitLog("genesis halt v2")
	v.waitFor("a 404 reported", func() bool { return strings.Contains(v.stderrText(), "HTTP 404") })
	v.assertHeld()
	if _, err := os.Stat(h.root("upgrades", "v2")); err == nil {
		t.Fatal("a failed download left upgrades/v2")
	}

	s.put("/app", bin)
	v.waitForT("v2 to start after the server was fixed", 45*time.Second, func() bool { return h.countLog(startLine("v2")) > 0 })
	h.assertCurrent("upgrades/v2")
	h.assertDownloaded(bin)
	v.stopWant(v2TermCode)
}

// TestE2EPrefetch: while genesis runs, vigil learns the plan from the node's RPC and downloads the
// binary; the halt then only switches (no second download).
func TestE2EPrefetch(t *testing.T) {
	t.Parallel()
	s := newDLServer(t)
	bin := readFakeBin(t)
	s.put("/app", bin)
	info := binInfo(s.URL+"/app", bin)
	h := newHome(t, obj{"v2": v2Quiet()}) // genesis runs quietly until the test writes the file
	must(t, os.RemoveAll(h.root("upgrades", "v2")))

	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true",
		"DAEMON_ALLOW_DOWNLOAD_BINARIES=true", "VIGIL_RPC_ADDRESS=tcp://"+s.Listener.Addr().String(),
		"VIGIL_PREFETCH_INTERVAL=100ms")
	v.waitLog(startLine("genesis"))
	v.waitFor("a few RPC polls without a plan", func() bool { return s.count("/abci_query") >= 2 })
	if s.count("/app") != 0 {
		t.Fatal("downloaded before any plan was scheduled")
	}
	s.schedule("V2", 100, info) // governance passed; the upper-case name must land in upgrades/v2
	want := h.root("upgrades", "v2", "bin", daemonName)
	v.waitFor("the prefetched binary", func() bool { _, err := os.Stat(want); return err == nil })
	v.waitMsg("prefetched the upgrade binary; the halt will only switch")
	h.assertDownloaded(bin)
	h.assertCurrent("genesis")
	h.assertNoLog("genesis got TERM")

	// The halt: x/upgrade writes upgrade-info.json.
	tmp := h.path("data", ".upgrade-info.tmp")
	must(t, os.WriteFile(tmp, []byte(infoJSON("V2", 100, info)), 0o644))
	must(t, os.Rename(tmp, h.path("data", "upgrade-info.json")))
	v.waitLog(startLine("v2"))
	h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
	h.assertCurrent("upgrades/v2")
	h.assertMarker("v2", "v2", 100)
	if n := s.count("/app"); n != 1 {
		t.Errorf("%d downloads, want 1 (the halt must not download again)", n)
	}
	if n := v.countMsg("upgrade binary downloaded"); n != 1 {
		t.Errorf("%d downloads logged, want 1", n)
	}
	v.stopWant(v2TermCode)
}

// TestE2EPrepareUpgrade: `vigil prepare-upgrade` downloads the scheduled binary once and exits 0,
// exits 0 saying so when nothing is scheduled, and fails clearly when it cannot.
func TestE2EPrepareUpgrade(t *testing.T) {
	t.Parallel()
	s := newDLServer(t)
	bin := readFakeBin(t)
	h := newHome(t, nil)
	must(t, os.RemoveAll(h.root("upgrades", "v2")))
	rpc := "VIGIL_RPC_ADDRESS=" + s.URL

	// Nothing scheduled: said on stdout, exit 0 (cosmovisor v1.7), nothing created.
	v, code := h.run([]string{"prepare-upgrade"}, rpc)
	if code != 0 || !strings.Contains(v.stdoutText(), "no upgrade scheduled") {
		t.Fatalf("no plan: exit %d, stdout:\n%s\nstderr:\n%s", code, v.stdoutText(), v.stderrText())
	}
	if ents, err := os.ReadDir(h.root("upgrades")); err != nil || len(ents) != 0 {
		t.Fatalf("no plan: upgrades/ holds %v (%v), want nothing", ents, err)
	}

	s.schedule("V2", 100, binInfo(s.URL+"/app", bin))
	v, code = h.run([]string{"prepare-upgrade"}, rpc)
	if code != 1 || !strings.Contains(v.stderrText(), "HTTP 404") || !strings.Contains(v.stderrText(), "not ready") {
		t.Fatalf("404: exit %d, stderr:\n%s", code, v.stderrText())
	}
	if _, err := os.Stat(h.root("upgrades", "v2")); err == nil {
		t.Fatal("a failed prepare-upgrade left upgrades/v2")
	}

	// Downloads off does not matter: the operator asked. The address comes from config.toml.
	s.put("/app", bin)
	must(t, os.MkdirAll(h.path("config"), 0o755))
	must(t, os.WriteFile(h.path("config", "config.toml"), []byte("[rpc]\nladdr = \"tcp://"+s.Listener.Addr().String()+"\"\n"), 0o644))
	v, code = h.run([]string{"prepare-upgrade"}, "DAEMON_ALLOW_DOWNLOAD_BINARIES=false")
	if code != 0 || !strings.Contains(v.stdoutText(), "downloaded") || !strings.Contains(v.stdoutText(), `"V2" at height 100`) {
		t.Fatalf("download: exit %d, stdout:\n%s\nstderr:\n%s", code, v.stdoutText(), v.stderrText())
	}
	h.assertDownloaded(bin)
	h.assertCurrent("genesis")

	v, code = h.run([]string{"prepare-upgrade", "--rpc", s.URL})
	if code != 0 || !strings.Contains(v.stdoutText(), "already in place") {
		t.Fatalf("second run: exit %d, stdout:\n%s\nstderr:\n%s", code, v.stdoutText(), v.stderrText())
	}
	if n := s.count("/app"); n != 2 { // the 404 and the download
		t.Errorf("%d requests for the binary, want 2", n)
	}

	s.Close()
	v, code = h.run([]string{"prepare-upgrade"}, rpc)
	if code != 1 || !strings.Contains(v.stderrText(), "cannot ask the node") {
		t.Fatalf("RPC down: exit %d, stderr:\n%s", code, v.stderrText())
	}
	must(t, os.Remove(h.path("config", "config.toml")))
	v, code = h.run([]string{"prepare-upgrade"})
	if code != 1 || !strings.Contains(v.stderrText(), "VIGIL_RPC_ADDRESS") {
		t.Fatalf("no RPC address: exit %d, stderr:\n%s", code, v.stderrText())
	}
}
