package noderpc

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// planResponse encodes QueryCurrentPlanResponse as x/upgrade does, with a
// zero Timestamp (field 2) and an unknown field that must be skipped.
func planResponse(name string, height int64, info string) []byte {
	var p []byte
	p = protowire.AppendTag(p, 1, protowire.BytesType)
	p = protowire.AppendString(p, name)
	var ts []byte
	ts = protowire.AppendTag(ts, 1, protowire.VarintType)
	secs := int64(-62135596800) // 0001-01-01, the zero time x/upgrade stores
	ts = protowire.AppendVarint(ts, uint64(secs))
	p = protowire.AppendTag(p, 2, protowire.BytesType)
	p = protowire.AppendBytes(p, ts)
	p = protowire.AppendTag(p, 3, protowire.VarintType)
	p = protowire.AppendVarint(p, uint64(height))
	if info != "" {
		p = protowire.AppendTag(p, 4, protowire.BytesType)
		p = protowire.AppendString(p, info)
	}
	p = protowire.AppendTag(p, 99, protowire.Fixed32Type)
	p = protowire.AppendFixed32(p, 7)
	var r []byte
	r = protowire.AppendTag(r, 1, protowire.BytesType)
	return protowire.AppendBytes(r, p)
}

func answer(value []byte, code int, log string) string {
	v := "null"
	if value != nil {
		v = `"` + base64.StdEncoding.EncodeToString(value) + `"`
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":-1,"result":{"response":{"code":%d,"log":%q,"info":"","index":"0","key":null,"value":%s,"proofOps":null,"height":"42","codespace":"sdk"}}}`, code, log, v)
}

// node is a fake CometBFT RPC that checks the query it gets.
func node(t *testing.T, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/abci_query" || r.URL.Query().Get("path") != `"`+currentPlanPath+`"` {
			t.Errorf("request %s, want abci_query with the CurrentPlan path", r.URL)
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}
}

func TestCurrentPlan(t *testing.T) {
	t.Parallel()
	info := `{"binaries":{"linux/amd64":"https://example.com/app"}}`
	for _, c := range []struct {
		name, body string
		want       string // "%+v" of the plan, "<nil>" for none
		err        string
	}{
		{"plan", answer(planResponse("v2", 100, info), 0, ""), fmt.Sprintf("&{Name:v2 Height:100 Info:%s}", info), ""},
		{"plan-no-info", answer(planResponse("V3", 7, ""), 0, ""), "&{Name:V3 Height:7 Info:}", ""},
		{"none-null", answer(nil, 0, ""), "<nil>", ""},
		{"none-empty", answer([]byte{}, 0, ""), "<nil>", ""},
		{"code", answer(nil, 6, "unknown query path"), "", "code 6 (sdk): unknown query path"},
		{"rpc-error", `{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"Internal error","data":"height 5 not available"}}`, "", "error -32603: Internal error height 5 not available"},
		{"garbage", `<html>502 Bad Gateway</html>`, "", "not a JSON-RPC answer"},
		{"bad-proto", answer([]byte{0x0a, 0x05, 0x01}, 0, ""), "", "decode CurrentPlan"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := httptest.NewServer(node(t, c.body))
			defer s.Close()
			cl, err := New(s.URL, 0)
			if err != nil {
				t.Fatal(err)
			}
			p, err := cl.CurrentPlan(context.Background())
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := "<nil>"
			if p != nil {
				got = fmt.Sprintf("%+v", p)
			}
			if got != c.want {
				t.Fatalf("plan = %s, want %s", got, c.want)
			}
		})
	}
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "rpc") // short: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(node(t, answer(planResponse("v2", 100, ""), 0, "")))
	s.Listener = ln
	s.Start()
	defer s.Close()
	cl, err := New("unix://"+sock, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cl.CurrentPlan(context.Background())
	if err != nil || p == nil || p.Name != "v2" {
		t.Fatalf("CurrentPlan = %+v, %v", p, err)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.NotFoundHandler())
	addr := s.Listener.Addr().String()
	s.Close()
	cl, err := New("tcp://"+addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CurrentPlan(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want connection refused", err)
	}
}

func TestNewAddress(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, base, err string }{
		{"tcp://127.0.0.1:26657", "http://127.0.0.1:26657", ""},
		{"tcp://0.0.0.0:26657", "http://127.0.0.1:26657", ""},
		{"tcp://:26657", "http://127.0.0.1:26657", ""},
		{"tcp://[::]:26657", "http://[::1]:26657", ""},
		{"localhost:26657", "http://localhost:26657", ""},
		{"http://node.internal:80/rpc/", "http://node.internal:80/rpc", ""},
		{"https://rpc.example.com:443", "https://rpc.example.com:443", ""},
		{"unix:///var/run/node.sock", "http://unix", ""},
		{"", "", "empty"},
		{"grpc://x:1", "", "unsupported scheme"},
		{"tcp://nohost", "", "missing port"},
	} {
		cl, err := New(c.in, 0)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("New(%q) err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || cl.base != c.base {
			t.Errorf("New(%q) base = %q, %v; want %q", c.in, cl.base, err, c.base)
		}
	}
}

func TestLaddrFromConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	os.WriteFile(p, []byte("moniker = \"x\"\n[p2p]\nladdr = \"tcp://0.0.0.0:26656\"\n[rpc]\nladdr = \"tcp://127.0.0.1:36657\"\n"), 0o644)
	got, err := LaddrFromConfig(p)
	if err != nil || got != "tcp://127.0.0.1:36657" {
		t.Fatalf("LaddrFromConfig = %q, %v", got, err)
	}
	os.WriteFile(p, []byte("[rpc]\nladdr = \"\"\n"), 0o644)
	if _, err := LaddrFromConfig(p); err == nil || !strings.Contains(err.Error(), "RPC server is off") {
		t.Fatalf("empty laddr: err = %v", err)
	}
	if _, err := LaddrFromConfig(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestLatestHeight(t *testing.T) {
	for _, tc := range []struct {
		desc, body string
		want       int64
		err        string
	}{
		{desc: "cometbft", body: `{"jsonrpc":"2.0","id":-1,"result":{"node_info":{"network":"x"},"sync_info":{"latest_block_hash":"AB","latest_block_height":"1234","catching_up":false}}}`, want: 1234},
		{desc: "a number", body: `{"result":{"sync_info":{"latest_block_height":77}}}`, want: 77},
		{desc: "no height", body: `{"result":{"sync_info":{}}}`, err: "no latest_block_height"},
		{desc: "not a height", body: `{"result":{"sync_info":{"latest_block_height":"x"}}}`, err: "invalid number"},
		{desc: "rpc error", body: `{"error":{"code":-32603,"message":"Internal error","data":"boom"}}`, err: "error -32603: Internal error boom"},
		{desc: "no result", body: `{"jsonrpc":"2.0"}`, err: "answer has no result"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/status" {
					t.Errorf("request %s, want /status", r.URL)
				}
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			c, err := New(srv.URL, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.LatestHeight(context.Background())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("LatestHeight = %d, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("LatestHeight = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
