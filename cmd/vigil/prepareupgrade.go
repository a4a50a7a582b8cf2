package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/fetch"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/noderpc"
	"github.com/vigilhq/vigil/reactor"
)

// setupDownloads gives the reactor a fetcher (DAEMON_ALLOW_DOWNLOAD_BINARIES
// is on) and, unless VIGIL_PREFETCH_INTERVAL is 0 or the node's RPC cannot
// be located, the node's RPC as the source of plans to prefetch.
func setupDownloads(rc *reactor.Config, cfg config.Config, log *slog.Logger) {
	fetcher := newFetcher(cfg, log)
	fetcher.CleanStaging() // `vigil run` holds the run lock: nothing of ours is downloading
	rc.Fetch = fetcher
	if cfg.PrefetchInterval <= 0 {
		log.Info("prefetch is off (VIGIL_PREFETCH_INTERVAL=0): upgrade binaries are downloaded at the halt")
		return
	}
	rpc, err := nodeRPC(cfg, "")
	if err != nil {
		log.Warn("prefetch is off: the node's RPC address is unknown; upgrade binaries are downloaded at the halt",
			"err", err, "hint", "set VIGIL_RPC_ADDRESS")
		return
	}
	rc.Plans, rc.PrefetchInterval = rpc, cfg.PrefetchInterval
	log.Info("prefetch is on: the scheduled upgrade's binary is downloaded before the halt", "rpc", rpc.Addr(), "every", cfg.PrefetchInterval)
}

func newFetcher(cfg config.Config, log *slog.Logger) *fetch.Fetcher {
	return fetch.New(fetch.Config{
		Layout:           cfg.Layout(),
		MustHaveChecksum: cfg.MustHaveChecksum,
		MaxTime:          cfg.DownloadMaxTime,
		Logger:           log.With("component", "fetch"),
	})
}

// nodeRPC finds the node's RPC: override, else VIGIL_RPC_ADDRESS, else
// rpc.laddr in $DAEMON_HOME/config/config.toml.
func nodeRPC(cfg config.Config, override string) (*noderpc.Client, error) {
	addr := override
	if addr == "" {
		addr = cfg.RPCAddress
	}
	if addr == "" {
		a, err := noderpc.LaddrFromConfig(filepath.Join(cfg.Home, "config", "config.toml"))
		if err != nil {
			return nil, fmt.Errorf("%w (or set %s)", err, config.EnvRPCAddress)
		}
		addr = a
	}
	return noderpc.New(addr, 0)
}

// prepareUpgradeCmd asks the node which upgrade is scheduled and makes its
// binary ready now, as `cosmovisor prepare-upgrade` does. It downloads even
// when DAEMON_ALLOW_DOWNLOAD_BINARIES is off: the operator asked for it.
// DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM still applies. Nothing scheduled is not
// an error (exit 0), as in cosmovisor v1.7.
func prepareUpgradeCmd(args []string, stdout, stderr io.Writer, getenv getenvFunc) error {
	cfg, rest, err := loadConfig(args, getenv, true)
	if err != nil {
		return err
	}
	var rpcAddr string
	for i := 0; i < len(rest); i++ {
		switch a := rest[i]; {
		case a == "--rpc" || a == "-rpc":
			if i+1 >= len(rest) {
				return errors.New("--rpc requires an address")
			}
			i++
			rpcAddr = rest[i]
		case strings.HasPrefix(a, "--rpc="):
			rpcAddr = strings.TrimPrefix(a, "--rpc=")
		default:
			return fmt.Errorf("prepare-upgrade: unexpected argument %q", a)
		}
	}
	if err := cfg.Validate(false); err != nil {
		return err
	}
	isTTY := false
	if f, ok := stderr.(*os.File); ok {
		isTTY = isTerminal(f)
	}
	log := NewLogger(cfg, stderr, isTTY)
	rpc, err := nodeRPC(cfg, rpcAddr)
	if err != nil {
		return fmt.Errorf("cannot find the node's RPC: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	p, err := rpc.CurrentPlan(ctx)
	if err != nil {
		return fmt.Errorf("cannot ask the node for the scheduled upgrade: %w", err)
	}
	if p == nil {
		// cosmovisor v1.7: "No active upgrade plan found", exit 0.
		fmt.Fprintf(stdout, "no upgrade scheduled on chain (asked %s): nothing to prepare\n", rpc.Addr())
		return nil
	}
	l := cfg.Layout()
	dir, err := l.DirName(p.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scheduled upgrade %q at height %d\n", p.Name, p.Height)
	res, err := newFetcher(cfg, log).Ensure(ctx, *p, dir)
	if err != nil {
		return fmt.Errorf("upgrade binary for %q not ready: %w", p.Name, err)
	}
	if res.Already {
		// Put there by hand (or by vigil): check it as the halt would.
		if _, err := home.CheckBinary(res.Path); err != nil {
			return fmt.Errorf("the binary at %s is not usable: %w", res.Path, err)
		}
		fmt.Fprintf(stdout, "binary already in place: %s\n", res.Path)
		return nil
	}
	fmt.Fprintf(stdout, "downloaded %s (%d bytes, %s)\nverified and installed at %s\n", res.URL, res.Bytes, res.Took.Round(time.Millisecond), res.Path)
	return nil
}
