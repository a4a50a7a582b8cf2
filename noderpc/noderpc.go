// Package noderpc asks a running node, over its CometBFT RPC, which upgrade
// the chain has scheduled: the x/upgrade CurrentPlan query sent through
// abci_query, decoded with protowire (no generated code).
//
// # Concurrency
//
// A Client is safe for concurrent use; each call is one bounded HTTP request
// and starts no goroutine that outlives it.
package noderpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/plan"
)

// currentPlanPath is the gRPC method x/upgrade serves through ABCI queries.
const currentPlanPath = "/cosmos.upgrade.v1beta1.Query/CurrentPlan"

// DefaultTimeout bounds one query, connect included.
const DefaultTimeout = 10 * time.Second

// maxResponse bounds the JSON answer; a plan is a few kB.
const maxResponse = 4 << 20

// Client queries one node.
type Client struct {
	base string // http(s)://host:port, or http://unix for a socket
	addr string // as configured, for messages
	http *http.Client
}

// New returns a client for addr, which may be a CometBFT listen address
// (tcp://127.0.0.1:26657, tcp://0.0.0.0:26657, unix:///path/rpc.sock), an
// http(s) URL, or host:port. A wildcard host means this machine.
func New(addr string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := &Client{addr: addr}
	tr := &http.Transport{
		Proxy:                 nil, // the node is local (or named explicitly); never via a proxy
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       time.Minute,
	}
	raw := strings.TrimSpace(addr)
	if raw == "" {
		return nil, errors.New("empty RPC address")
	}
	if !strings.Contains(raw, "://") {
		raw = "tcp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("RPC address %q: %w", addr, err)
	}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			sock = u.Host + u.Opaque
		}
		if sock == "" {
			return nil, fmt.Errorf("RPC address %q names no socket", addr)
		}
		d := &net.Dialer{Timeout: timeout}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
		c.base = "http://unix"
	case "tcp", "http", "https":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return nil, fmt.Errorf("RPC address %q: %w", addr, err)
		}
		switch host {
		case "", "0.0.0.0":
			host = "127.0.0.1"
		case "::", "[::]":
			host = "::1"
		}
		scheme := u.Scheme
		if scheme == "tcp" {
			scheme = "http"
		}
		c.base = scheme + "://" + net.JoinHostPort(host, port) + strings.TrimSuffix(u.Path, "/")
	default:
		return nil, fmt.Errorf("RPC address %q: unsupported scheme %q (want tcp, unix, http or https)", addr, u.Scheme)
	}
	c.http = &http.Client{Transport: tr, Timeout: timeout}
	return c, nil
}

// Addr is the address the client was made for.
func (c *Client) Addr() string { return c.addr }

// LaddrFromConfig reads rpc.laddr from a CometBFT config.toml
// ($DAEMON_HOME/config/config.toml).
func LaddrFromConfig(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var cfg struct {
		RPC struct {
			Laddr string `toml:"laddr"`
		} `toml:"rpc"`
	}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("parse %s: %w", path, err)
	}
	if cfg.RPC.Laddr == "" {
		return "", fmt.Errorf("%s has no rpc.laddr: the node's RPC server is off", path)
	}
	return cfg.RPC.Laddr, nil
}

// CurrentPlan returns the upgrade the chain has scheduled, nil if none.
func (c *Client) CurrentPlan(ctx context.Context) (*plan.Plan, error) {
	var result struct {
		Response struct {
			Code      uint32 `json:"code"`
			Log       string `json:"log"`
			Codespace string `json:"codespace"`
			Value     []byte `json:"value"` // base64 in JSON
		} `json:"response"`
	}
	q := url.Values{"path": {`"` + currentPlanPath + `"`}}
	if err := c.call(ctx, "/abci_query?"+q.Encode(), &result); err != nil {
		return nil, err
	}
	if r := result.Response; r.Code != 0 {
		return nil, fmt.Errorf("node RPC %s: CurrentPlan query failed: code %d (%s): %s", c.addr, r.Code, r.Codespace, r.Log)
	}
	return decodeCurrentPlan(result.Response.Value)
}

// LatestHeight is the height of the node's latest block (CometBFT /status).
// The app may not have committed it yet: it has committed that height or
// the one before.
func (c *Client) LatestHeight(ctx context.Context) (int64, error) {
	var result struct {
		SyncInfo struct {
			LatestBlockHeight json.Number `json:"latest_block_height"` // a string in CometBFT's JSON
		} `json:"sync_info"`
	}
	if err := c.call(ctx, "/status", &result); err != nil {
		return 0, err
	}
	h, err := strconv.ParseInt(result.SyncInfo.LatestBlockHeight.String(), 10, 64)
	if err != nil || h < 0 {
		return 0, fmt.Errorf("node RPC %s: /status has no latest_block_height: %q", c.addr, result.SyncInfo.LatestBlockHeight)
	}
	return h, nil
}

// call makes one JSON-RPC GET and decodes its result into result.
func (c *Client) call(ctx context.Context, path string, result any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("node RPC %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("node RPC %s: %w", c.addr, err)
	}
	if len(body) > maxResponse {
		return fmt.Errorf("node RPC %s: answer over %d bytes", c.addr, maxResponse)
	}
	var rpc struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &rpc); err != nil {
		return fmt.Errorf("node RPC %s: HTTP %s, not a JSON-RPC answer: %w", c.addr, resp.Status, err)
	}
	switch {
	case rpc.Error != nil:
		return fmt.Errorf("node RPC %s: error %d: %s %s", c.addr, rpc.Error.Code, rpc.Error.Message, rpc.Error.Data)
	case len(rpc.Result) == 0 || string(rpc.Result) == "null":
		return fmt.Errorf("node RPC %s: HTTP %s, answer has no result", c.addr, resp.Status)
	}
	if err := json.Unmarshal(rpc.Result, result); err != nil {
		return fmt.Errorf("node RPC %s: %w", c.addr, err)
	}
	return nil
}

// decodeCurrentPlan decodes QueryCurrentPlanResponse{plan = 1: Plan{name = 1,
// time = 2, height = 3, info = 4, upgraded_client_state = 5}}.
func decodeCurrentPlan(b []byte) (*plan.Plan, error) {
	var p *plan.Plan
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		p = &plan.Plan{}
		return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				p.Name = string(v)
			case num == 3 && typ == protowire.VarintType:
				p.Height = int64(n)
			case num == 4 && typ == protowire.BytesType:
				p.Info = string(v)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("decode CurrentPlan answer: %w", err)
	}
	if p != nil && p.Name == "" && p.Height == 0 {
		return nil, nil // an empty plan message: nothing scheduled
	}
	if p != nil && (p.Name == "" || p.Height <= 0) {
		return nil, fmt.Errorf("decode CurrentPlan answer: plan without name or height (%q, %d)", p.Name, p.Height)
	}
	return p, nil
}

// fields calls f for each field of a protobuf message; v is set for
// length-delimited fields, n for varints.
func fields(b []byte, f func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
