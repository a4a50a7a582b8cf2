#!/usr/bin/env bash
# One upgrade, start to finish, on the fake node in testdata/fakeapp:
# genesis runs, "halts" at height 100 by writing data/upgrade-info.json,
# vigil stops it, backs up data/, switches current and starts v2 with the same args.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/vigil" ./cmd/vigil
go build -o "$work/app" ./testdata/fakeapp
home="$work/home"
mkdir -p "$home/cosmovisor/upgrades/v2/bin"
export DAEMON_HOME="$home" DAEMON_NAME=app
"$work/vigil" init "$work/app"
cp "$work/app" "$home/cosmovisor/upgrades/v2/bin/app"
cat > "$home/fakeapp.json" <<'JSON'
{"genesis": {"halt": {"name": "v2", "height": 100, "after": "1s", "write": "inplace", "then": "stay"}},
 "v2":      {"exit_after": "2s", "exit_code": 0}}
JSON
echo "--- vigil run start --home $home   (vigil's log on stderr, the app's output on stdout)"
"$work/vigil" run start --home "$home"
echo "--- vigil exited with $?"
echo "--- what the fake node saw:"; cat "$home/fakeapp.log"
echo "--- current -> $(readlink "$home/cosmovisor/current")"
echo "--- backups:"; ls -d "$home"/data-backup-*
