#!/usr/bin/env bash
# A real chain upgrade under vigil: a one-validator simapp chain starts on Cosmos SDK
# v0.45.16, votes the software upgrade "v045-to-v046", halts at the upgrade height,
# and vigil switches it to v0.46.16, whose upgrade handler migrates the stores.
# With --manual, the upgrade is scheduled by the operator instead (no governance).
#
# Usage: testdata/devnet/run.sh [--backup] [--kill-vigil] [--download] [--manual] [--keep] [--ci]
#   --backup      vigil backs up data/ before the switch (UNSAFE_SKIP_BACKUP=false);
#                 off by default so the downtime measures the switch itself
#   --kill-vigil  SIGKILL vigil right after it logs "stopping app", then start it again
#   --download    no add-upgrade: vigil downloads the v0.46 binary from a local HTTP
#                 server named in the proposal's upgrade info (with a sha256 checksum)
#   --manual      no proposal: once the chain runs, `vigil add-upgrade manual1 BIN
#                 --upgrade-height H` (H = the height then + 12), BIN the same simd v0.45
#                 linked with version.Version=v0.45.16-manual (seconds after the v0.45
#                 build; no v0.46 build). vigil restarts the node with --halt-height=H, the
#                 SDK commits block H and stops the node, vigil switches to BIN, which makes
#                 H+1. Checked from the logs (the halt, the new node's handshake finding
#                 the app at H with the new version) and from the chain (block H's
#                 precommit signed before the old node exited, H+1's after the new one
#                 started). Goes with --backup and --keep only.
#   --keep        keep the temporary home for inspection
#   --ci          the CI test: the plain flow, then --kill-vigil --backup, then --download,
#                 then --manual twice: scheduled while the node runs (it halts ~6s after
#                 vigil restarts it, and the SDK, still starting its servers, dies of its
#                 own SIGINT), and before the start at height 45 (~23s: a clean exit 0)
# Environment: VOTING_PERIOD (whole seconds, default 10s), DEVNET_TMP (parent of the
# temporary folder), DEVNET_KEEP_ON_FAILURE=1 (keep the folder when the run fails),
# DEVNET_VIGIL (a vigil binary to use instead of building ./cmd/vigil),
# MANUAL_SCHEDULE=running|start (--manual: add the upgrade while the node runs, the
# default, MANUAL_LEAD blocks ahead (12), or before vigil starts, at MANUAL_HEIGHT (15)).
#
# The chain: one validator, all ports on 127.0.0.1 (free ports), blocks every ~0.5s
# (timeout_commit 500ms, timeout_propose 1s, prevote/precommit 500ms, genesis
# time_iota_ms 1), gov voting period VOTING_PERIOD with a 1000stake minimum deposit.
#
# Downtime, printed at the end: from the old node's log line `UPGRADE "v045-to-v046"
# NEEDED at height: H` (x/upgrade writes upgrade-info.json just before it) to the new
# node's "committed state" for block H (the block v0.45 refused, replayed with the
# migration by v0.46). One clock: the machine's; node lines are stamped by devnetctl as
# it reads them (the SDK's log stamps whole seconds), vigil's steps come from its JSON
# log. Block H+1, the first block consensus makes on v0.46, is printed too. With
# --manual: from the old node's "halting node per configuration" (BaseApp.Commit of
# block H, after the app committed it) to the new node's "committed state" for H+1, and
# the time between the precommits of H and H+1 (0.5s without an upgrade).
#
# Every process it starts is stopped on exit, on failure and on Ctrl-C. Exit status 0
# means the chain went past the upgrade height on the new binary (and for v0.46, `query
# upgrade applied` answers); anything else prints why and the tail of vigil's and the
# node's logs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export GOTOOLCHAIN=local

UPGRADE=v045-to-v046
MANUAL=manual1                # --manual: the upgrade scheduled with vigil add-upgrade
MANUAL_VERSION=v0.45.16-manual # --manual: version.Version of its (otherwise identical) simd
CHAIN="vigil-devnet-1"
VOTING_PERIOD=${VOTING_PERIOD:-10s}
MANUAL_SCHEDULE=${MANUAL_SCHEDULE:-running}
MANUAL_LEAD=${MANUAL_LEAD:-12}     # running: H = the height then + MANUAL_LEAD
MANUAL_HEIGHT=${MANUAL_HEIGHT:-15} # start: H

backup=false kill_vigil=false download=false keep=false ci=false manual=false
for a in "$@"; do
	case $a in
	--backup) backup=true ;;
	--kill-vigil) kill_vigil=true ;;
	--download) download=true ;;
	--manual) manual=true ;;
	--keep) keep=true ;;
	--ci) ci=true ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run.sh: unknown flag $a (try --help)" >&2
		exit 2
		;;
	esac
done
if $manual && { $download || $kill_vigil; }; then
	echo "run.sh: --manual goes with --backup and --keep only (no plan to download; vigil logs no \"stopping app\" when the node halts itself)" >&2
	exit 2
fi
case $MANUAL_SCHEDULE in running | start) ;; *)
	echo "run.sh: MANUAL_SCHEDULE=$MANUAL_SCHEDULE, want running or start" >&2
	exit 2
	;;
esac
if ! [[ $MANUAL_LEAD =~ ^[0-9]+$ && $MANUAL_HEIGHT =~ ^[0-9]+$ ]] || ((MANUAL_LEAD < 4 || MANUAL_HEIGHT < 5)); then
	echo "run.sh: MANUAL_LEAD=$MANUAL_LEAD (at least 4) and MANUAL_HEIGHT=$MANUAL_HEIGHT (at least 5) must be block counts" >&2
	exit 2
fi

t0=$(date +%s)
say() { printf '%s ==> %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }

if $ci; then
	# Two chains, one after the other; the second run reuses the cached builds.
	rest=()
	for a in "$@"; do [[ $a == --ci ]] || rest+=("$a"); done
	"$0" ${rest[@]+"${rest[@]}"}
	"$0" ${rest[@]+"${rest[@]}"} --kill-vigil --backup
	"$0" ${rest[@]+"${rest[@]}"} --download
	# The SDK waits 5s for each of its gRPC, gRPC-web and API servers before it handles
	# SIGINT/SIGTERM: a halt in its first ~15s kills the node by its own signal; a later
	# one is a clean exit 0. Both must end in the upgrade.
	MANUAL_SCHEDULE=running "$0" ${rest[@]+"${rest[@]}"} --manual               # halt ~6s after the restart
	MANUAL_SCHEDULE=start MANUAL_HEIGHT=45 "$0" ${rest[@]+"${rest[@]}"} --manual # ~23s after the start
	say "devnet CI test passed (plain, then --kill-vigil --backup, then --download, then --manual twice) in $(($(date +%s) - t0))s"
	exit 0
fi

# ---------------------------------------------------------------- builds
bin=$here/.bin
mkdir -p "$bin"

# build_simd v045|v046 [NAME VERSION]: the stock simd of that nested module, cached in
# .bin/simd-v045 (or .bin/simd-NAME, with cosmos-sdk's version.Version set to VERSION)
# and rebuilt only when its go.mod/go.sum or the Go version change (the first build
# takes minutes; a VERSION build after it only links again: seconds).
build_simd() {
	local v=$1 out=$bin/simd-${2:-$1} ver=${3:-} key ldflags=()
	key="$(cat "$here/$v/go.mod" "$here/$v/go.sum" | sha256sum | cut -d' ' -f1) $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH) cgo=0${ver:+ version=$ver}"
	if [[ -x $out && -f $out.key && "$(cat "$out.key")" == "$key" ]]; then
		say "simd $v${ver:+ as $ver}: cached ($out)"
		return
	fi
	say "building simd $v${ver:+ as $ver} (cosmos-sdk $(sed -n 's/^require github.com\/cosmos\/cosmos-sdk //p' "$here/$v/go.mod")); the first build takes minutes"
	local start=$SECONDS
	[[ -z $ver ]] || ldflags=(-ldflags "-X github.com/cosmos/cosmos-sdk/version.Version=$ver")
	# Pure Go (goleveldb, the test keyring, no Ledger USB): static, and no C compiler
	# needed, so the binary is the same whether or not the machine has gcc.
	(cd "$here/$v" && CGO_ENABLED=0 go build -buildvcs=false ${ldflags[@]+"${ldflags[@]}"} -o "$out.tmp" github.com/cosmos/cosmos-sdk/simapp/simd)
	mv -f "$out.tmp" "$out"
	echo "$key" >"$out.key"
	say "simd $v${ver:+ as $ver} built in $((SECONDS - start))s"
}
build_simd v045
simd45=$bin/simd-v045
if $manual; then
	# The "new" binary of --manual: the same simd v0.45, told apart by its version
	# (simd version, the node's ABCI handshake, /abci_info) and by its bytes.
	build_simd v045 "$MANUAL" "$MANUAL_VERSION"
	simd45m=$bin/simd-$MANUAL
else
	build_simd v046
	simd46=$bin/simd-v046
fi

# ---------------------------------------------------------------- cleanup
work="" home="" log="" vigil_pid="" follow_pid="" serve_pid=""
alive() { # a running process, not a zombie waiting for us to reap it
	[[ -n $1 ]] && kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}
wait_gone() { # pid seconds
	local end=$((SECONDS + $2))
	while alive "$1" && ((SECONDS < end)); do sleep 0.1; done
	! alive "$1"
}
node_pids() { if [[ -n $work && -f $work/node.pids ]]; then cat "$work/node.pids"; fi; }
ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "--home $home"; }

show_tails() {
	[[ -n $log && -f $log ]] || return 0
	echo "----- vigil's log (last 30 lines of $log) -----"
	grep -F '"msg":' "$log" | tail -n 30 || true
	echo "----- the node's log (last 40 lines) -----"
	grep -vF '"msg":' "$log" | tail -n 40 | cut -c1-400 || true
	echo "-----"
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if alive "$vigil_pid"; then
		# vigil forwards SIGTERM to the node and waits for it (grace 30s).
		kill -TERM -- "-$vigil_pid" 2>/dev/null
		wait_gone "$vigil_pid" 40 || kill -KILL -- "-$vigil_pid" 2>/dev/null
	fi
	for p in $(node_pids); do
		if alive "$p" && ours "$p"; then
			kill -TERM "$p" 2>/dev/null
			wait_gone "$p" 20 || kill -KILL "$p" 2>/dev/null
		fi
	done
	if alive "$serve_pid"; then kill -TERM "$serve_pid" 2>/dev/null; fi
	exec 3>&- # the follower's input ends once no node or vigil holds it either
	if [[ -n $follow_pid ]]; then
		wait_gone "$follow_pid" 5 || kill -TERM "$follow_pid" 2>/dev/null
	fi
	wait 2>/dev/null
	if ((rc != 0)); then
		show_tails
		say "FAILED (exit $rc)"
	fi
	if [[ -z $work ]]; then
		:
	elif $keep || { ((rc != 0)) && [[ -n ${DEVNET_KEEP_ON_FAILURE:-} ]]; }; then
		echo "kept $work (home: $home, log: $log)"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work=$(mktemp -d "${DEVNET_TMP:-${TMPDIR:-/tmp}}/vigil-devnet.XXXXXX")
home=$work/home
log=$work/combined.log # vigil's JSON log and the node's JSON log, each line time-stamped
say "work folder $work"
if [[ -n ${DEVNET_VIGIL:-} ]]; then
	cp "$DEVNET_VIGIL" "$work/vigil"
	say "vigil: $DEVNET_VIGIL (DEVNET_VIGIL)"
else
	say "building vigil from $root"
	(cd "$root" && go build -o "$work/vigil" ./cmd/vigil)
fi
(cd "$root" && go build -o "$work/devnetctl" ./testdata/devnet/devnetctl)
vigil=$work/vigil
ctl=$work/devnetctl

die() {
	say "FAIL: $*" >&2
	exit 1
}

# wait_until SECONDS WHAT COMMAND...: poll until COMMAND succeeds.
wait_until() {
	local secs=$1 what=$2 end=$((SECONDS + $1))
	shift 2
	until "$@"; do
		((SECONDS < end)) || die "timed out after ${secs}s waiting for $what"
		# vigil retries an upgrade that is not ready (a download that failed, a binary
		# copied late) with backoff; only "downloads are off" can never succeed here.
		if grep -F '"msg":"upgrade not ready"' "$log" 2>/dev/null | grep -qF 'downloads are off'; then
			die "vigil cannot make the upgrade ready: $(grep -F '"msg":"upgrade not ready"' "$log" | head -n 1 | sed 's/.*"err":"\([^"]*\)".*/\1/')"
		fi
		if [[ -n $vigil_pid ]] && ! alive "$vigil_pid" && ! $expect_vigil_exit; then
			die "vigil exited while waiting for $what"
		fi
		sleep 0.2
	done
}
expect_vigil_exit=false

# ---------------------------------------------------------------- the chain
mapfile -t p < <("$ctl" ports 7)
rpc=${p[0]} p2p=${p[1]} grpc=${p[2]} grpcweb=${p[3]} api=${p[4]} pprof=${p[5]} rosetta=${p[6]}
node=tcp://127.0.0.1:$rpc
say "ports on 127.0.0.1: rpc $rpc, p2p $p2p, grpc $grpc, grpc-web $grpcweb, api $api, pprof $pprof"

# toml_set FILE SECTION KEY VALUE: set KEY (which must exist) in [SECTION] ("" = top level).
toml_set() {
	awk -v sec="[$2]" -v key="$3" -v val="$4" '
		BEGIN { cur = "[]" }
		/^\[/ { cur = $0 }
		cur == sec && $0 ~ "^" key " *=" { print key " = " val; done = 1; next }
		{ print }
		END { if (!done) { print "toml_set: no " key " in " sec > "/dev/stderr"; exit 1 } }
	' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

say "initialising a one-validator chain ($CHAIN) on v0.45 in $home"
{
	"$simd45" init devnet --chain-id "$CHAIN" --home "$home"
	"$simd45" keys add validator --keyring-backend test --home "$home"
	# One deposit enters the voting period, and the vote ends soon.
	"$ctl" genesis "$home/config/genesis.json" "$VOTING_PERIOD" 1000stake
	"$simd45" add-genesis-account validator 1000000000000stake --keyring-backend test --home "$home"
	"$simd45" gentx validator 100000000stake --chain-id "$CHAIN" --keyring-backend test --home "$home"
	"$simd45" collect-gentxs --home "$home"
	"$simd45" validate-genesis --home "$home"
} >"$work/init.log" 2>&1 || {
	tail -n 30 "$work/init.log"
	die "chain init failed"
}
cfg=$home/config/config.toml app=$home/config/app.toml cli=$home/config/client.toml
toml_set "$cfg" rpc laddr "\"$node\""
toml_set "$cfg" rpc pprof_laddr "\"127.0.0.1:$pprof\""
toml_set "$cfg" p2p laddr "\"tcp://127.0.0.1:$p2p\""
# Devnet consensus timing: a block every ~0.5s. With one validator, propose/prevote/
# precommit never time out; they only bound a stuck round.
toml_set "$cfg" consensus timeout_propose '"1s"'
toml_set "$cfg" consensus timeout_propose_delta '"200ms"'
toml_set "$cfg" consensus timeout_prevote '"500ms"'
toml_set "$cfg" consensus timeout_prevote_delta '"200ms"'
toml_set "$cfg" consensus timeout_precommit '"500ms"'
toml_set "$cfg" consensus timeout_precommit_delta '"200ms"'
toml_set "$cfg" consensus timeout_commit '"500ms"'
toml_set "$app" api enable true
toml_set "$app" api address "\"tcp://127.0.0.1:$api\""
toml_set "$app" grpc address "\"127.0.0.1:$grpc\""
toml_set "$app" grpc-web address "\"127.0.0.1:$grpcweb\""
toml_set "$app" rosetta address "\"127.0.0.1:$rosetta\"" # disabled, but never a default port
toml_set "$cli" "" chain-id "\"$CHAIN\""
toml_set "$cli" "" keyring-backend '"test"'
toml_set "$cli" "" node "\"$node\""

# ---------------------------------------------------------------- vigil
# Only this run's settings: nothing leaks in from the caller's environment.
for v in $(env | sed -n 's/^\(DAEMON_[A-Z_]*\|COSMOVISOR_[A-Z_]*\|VIGIL_[A-Z_]*\|UNSAFE_SKIP_BACKUP\)=.*/\1/p'); do unset "$v"; done
export DAEMON_HOME=$home DAEMON_NAME=simd
export COSMOVISOR_LOG_FORMAT=json COSMOVISOR_LOG_LEVEL=debug
if $backup; then export UNSAFE_SKIP_BACKUP=false; else export UNSAFE_SKIP_BACKUP=true; fi
"$vigil" init "$simd45" | sed 's/^/    vigil init: /'
# schedule_manual: --manual's upgrade at height H, no governance. vigil installs the
# binary in upgrades/$MANUAL and keeps the plan in data/upgrade-info.json.batch; it
# starts the node with --halt-height=H (restarting it if it runs), so block H is the
# last one the old binary commits.
schedule_manual() {
	echo "$H" >"$work/upgrade-height"
	say "scheduling $MANUAL at height $H without governance: vigil add-upgrade $MANUAL $simd45m --upgrade-height $H"
	"$vigil" add-upgrade "$MANUAL" "$simd45m" --upgrade-height "$H" 2>&1 | sed 's/^/    vigil add-upgrade: /'
}
info_args=()
if $download; then
	mkdir -p "$work/www"
	cp "$simd46" "$work/www/simd"
	sum=$(sha256sum "$work/www/simd" | cut -d' ' -f1)
	"$ctl" serve "$work/www" "$work/www.port" 3>&- 2>"$work/serve.log" &
	serve_pid=$!
	wait_until 20 "the HTTP server" test -s "$work/www.port"
	url="http://127.0.0.1:$(cat "$work/www.port")/simd?checksum=sha256:$sum"
	info_args=(--upgrade-info "{\"binaries\":{\"$(go env GOOS)/$(go env GOARCH)\":\"$url\"}}")
	export DAEMON_ALLOW_DOWNLOAD_BINARIES=true
	# The vote lasts seconds here, not days: ask the node for its plan every 2s (default
	# 30s) so the binary is prefetched between the vote and the halt.
	export VIGIL_PREFETCH_INTERVAL=2s
	say "v0.46 binary served at $url; not staged: vigil must download it"
elif $manual; then
	if [[ $MANUAL_SCHEDULE == start ]]; then
		H=$MANUAL_HEIGHT # vigil starts the node with --halt-height=H from the start
		schedule_manual
	fi
else
	"$vigil" add-upgrade "$UPGRADE" "$simd46" | sed 's/^/    vigil add-upgrade: /'
fi

mkfifo "$work/out.fifo"
exec 3<>"$work/out.fifo" # our own writer: the follower sees no EOF while vigil restarts
follow_args=(-pids "$work/node.pids" -height-file "$work/upgrade-height")
if $kill_vigil; then follow_args+=(-kill-on "stopping app" -kill-pid-file "$work/vigil.pid"); fi
"$ctl" follow "$log" "${follow_args[@]}" <"$work/out.fifo" 3>&- &
follow_pid=$!

start_vigil() {
	# Its own session: Ctrl-C reaches only this script, which stops vigil itself,
	# and killing vigil's process group kills vigil alone (the node has its own).
	setsid "$vigil" run start --home "$home" --log_format json </dev/null >&3 2>&3 &
	vigil_pid=$!
	echo "$vigil_pid" >"$work/vigil.pid"
	sleep 0.1
	[[ $(awk '{print $5}' "/proc/$vigil_pid/stat" 2>/dev/null) == "$vigil_pid" ]] || die "vigil (pid $vigil_pid) is not running in its own process group"
}
say "starting: vigil run start --home $home --log_format json   (DAEMON_HOME, DAEMON_NAME=simd, UNSAFE_SKIP_BACKUP=$UNSAFE_SKIP_BACKUP)"
start_vigil

height() { "$ctl" height "http://127.0.0.1:$rpc" 2>/dev/null; }
at_least() { local h; h=$(height) && ((h >= $1)); }
wait_until 90 "block 3" at_least 3

# --manual's waits. Not before the halt: the old binary must make block H.
early() {
	if grep -qF '"msg":"switched"' "$log" && ! grep -qF '"message":"halting node per configuration"' "$log"; then
		die "vigil switched to $MANUAL before the node halted at height $H (now $(height || echo '?'))"
	fi
}
# vigil's "app started" lists the node's arguments.
halt_arg() { early && grep -F '"msg":"app started"' "$log" | grep -qE "\"--halt-height(=|\",\")$H\""; }
node_halted() { early && grep -qF '"message":"halting node per configuration"' "$log"; }
if $manual; then
	if [[ $MANUAL_SCHEDULE == running ]]; then
		h_now=$(height)
		H=$((h_now + MANUAL_LEAD)) # 12: ~6s; vigil restarts the node with the halt height in ~1s
		schedule_manual
	fi
	wait_until 30 "vigil to start the node with --halt-height=$H" halt_arg
	wait_until 30 "the node's RPC" at_least 1 # it was just restarted
	h_now=$(height)
	((h_now < H)) || die "the node is at height $h_now already, past the scheduled $H"
	say "the node runs with --halt-height=$H (now at $h_now)"
	wait_until $((H - h_now + 60)) "the halt at height $H" node_halted
	# Block H+1's commit is final once H+2 exists; report-manual reads both from the RPC.
	wait_until 120 "block $((H + 2)) on the $MANUAL binary" at_least $((H + 2))
	say "chain is past the upgrade height: block $(height)"

	cur=$(readlink "$home/cosmovisor/current")
	[[ $cur == upgrades/$MANUAL ]] || die "current -> $cur, want upgrades/$MANUAL"
	last_pid=$(node_pids | tail -n 1)
	exe=$(readlink "/proc/$last_pid/exe" 2>/dev/null || true)
	[[ $exe == "$home/cosmovisor/upgrades/$MANUAL/bin/simd" ]] || die "the running node (pid $last_pid) is $exe, not the upgrade binary"
	cmp -s "$exe" "$simd45m" || die "the running node binary differs from the $MANUAL_VERSION build"
	info_file=$home/data/upgrade-info.json
	if ! grep -qE "\"name\": *\"$MANUAL\"" "$info_file" || ! grep -qE "\"height\": *\"?$H\"?[,}]" "$info_file"; then
		die "$info_file does not hold $MANUAL at height $H: $(cat "$info_file" 2>&1)"
	fi
	batch=$home/data/upgrade-info.json.batch
	if [[ -f $batch ]] && grep -qF "\"$MANUAL\"" "$batch"; then
		die "$batch still schedules $MANUAL: $(cat "$batch")"
	fi
	say "current -> $cur, node pid $last_pid runs $exe ($MANUAL_VERSION); upgrade-info.json: $(tr -d ' \n' <"$info_file")"
	if $backup; then
		b=$(find "$home" -maxdepth 1 -name 'data-backup-*' -print -quit)
		[[ -n $b ]] || die "--backup: no data-backup-* in $home"
		say "backup: $b ($(du -sh "$b" | cut -f1))"
	fi
	echo
	"$ctl" report-manual "$log" "$MANUAL" "$H" "http://127.0.0.1:$rpc" "$MANUAL_VERSION" || die "no downtime report"
	echo
	flags="--manual"
	$backup && flags+=" --backup"
	when="while the node ran"
	[[ $MANUAL_SCHEDULE == start ]] && when="before vigil started"
	say "devnet upgrade passed ($flags; $MANUAL scheduled $when) in $(($(date +%s) - t0))s"
	exit 0
fi

# ---------------------------------------------------------------- governance
vp=${VOTING_PERIOD%s}
h_now=$(height)
H=$((h_now + 2 * ${vp%.*} + 12)) # blocks are at least 0.5s apart: the vote ends before H
echo "$H" >"$work/upgrade-height"
tx() {
	local out
	out=$("$simd45" tx "$@" --from validator --yes --broadcast-mode block --gas 400000 \
		--chain-id "$CHAIN" --keyring-backend test --home "$home" --node "$node" --output json 2>&1) ||
		die "tx $1 $2 failed: $out"
	grep -q '"code":0[,}]' <<<"$out" || die "tx $1 $2 was not accepted: $out"
}
say "submitting software-upgrade $UPGRADE at height $H (now $h_now; voting period $VOTING_PERIOD)"
tx gov submit-proposal software-upgrade "$UPGRADE" --title "Upgrade to v0.46" \
	--description "simapp v0.45.16 to v0.46.16 under vigil" --upgrade-height "$H" \
	${info_args[@]+"${info_args[@]}"} --deposit 1000stake
say "voting yes on proposal 1"
tx gov vote 1 yes
status() { "$simd45" query gov proposal 1 --node "$node" --home "$home" --output json 2>/dev/null | grep -o '"status":"[A-Z_]*"' | cut -d'"' -f4; }
passed() {
	local s
	s=$(status)
	case $s in
	PROPOSAL_STATUS_PASSED) return 0 ;;
	PROPOSAL_STATUS_REJECTED | PROPOSAL_STATUS_FAILED) die "proposal 1 ended $s" ;;
	esac
	return 1
}
wait_until $((${vp%.*} + 60)) "the proposal to pass" passed
h_pass=$(height)
((h_pass < H)) || die "the proposal passed at height $h_pass, not before the upgrade height $H"
say "proposal passed at height $h_pass; the chain halts at $H"

# ---------------------------------------------------------------- the upgrade
halted() { grep -qF "NEEDED at height: $H" "$log"; }
$kill_vigil && expect_vigil_exit=true # the follower kills it as soon as it logs "stopping app"
wait_until 120 "the halt at height $H" halted
if $kill_vigil; then
	wait_gone "$vigil_pid" 30 || die "vigil was not killed after it logged \"stopping app\""
	wait "$vigil_pid" 2>/dev/null || true
	say "vigil is gone; waiting for the old node to exit (its parent-death signal is SIGTERM)"
	for p in $(node_pids); do wait_gone "$p" 60 || die "node pid $p still runs 60s after vigil was killed"; done
	say "restarting vigil: it must apply the pending upgrade before starting anything"
	start_vigil
	expect_vigil_exit=false
fi
wait_until 120 "block $((H + 1)) on v0.46" at_least $((H + 1))
say "chain is past the upgrade height: block $(height)"

# ---------------------------------------------------------------- checks
cur=$(readlink "$home/cosmovisor/current")
[[ $cur == upgrades/$UPGRADE ]] || die "current -> $cur, want upgrades/$UPGRADE"
last_pid=$(node_pids | tail -n 1)
exe=$(readlink "/proc/$last_pid/exe" 2>/dev/null || true)
[[ $exe == "$home/cosmovisor/upgrades/$UPGRADE/bin/simd" ]] || die "the running node (pid $last_pid) is $exe, not the upgrade binary"
cmp -s "$exe" "$simd46" || die "the running node binary differs from the v0.46 build"
applied=$("$simd46" query upgrade applied "$UPGRADE" --node "$node" --home "$home" --output json 2>&1) ||
	die "simd (v0.46) query upgrade applied $UPGRADE failed: $applied"
# It prints the header of the block the upgrade was applied in: block H.
grep -q "\"height\": *\"$H\"" <<<"$applied" || die "query upgrade applied $UPGRADE does not name height $H: $applied"
say "simd (v0.46) query upgrade applied $UPGRADE: block $H, $(grep -o '"time": *"[^"]*"' <<<"$applied" | head -n 1)"
if $backup; then
	b=$(find "$home" -maxdepth 1 -name 'data-backup-*' -print -quit)
	[[ -n $b ]] || die "--backup: no data-backup-* in $home"
	say "backup: $b ($(du -sh "$b" | cut -f1))"
fi

echo
"$ctl" report "$log" "$UPGRADE" "$H" || die "no downtime report"
echo
flags=""
$backup && flags+=" --backup"
$kill_vigil && flags+=" --kill-vigil"
$download && flags+=" --download"
say "devnet upgrade passed${flags:+ (${flags# })} in $(($(date +%s) - t0))s"
