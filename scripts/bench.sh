#!/usr/bin/env bash
# Benchmark (not a test): the release server with a file audit device and a policy-limited
# token, KV v2 reads and durable writes over HTTP keep-alive with 32 connections (wrk), next to
# a trivial axum server returning the same JSON body, measured in the same run.
#
#   scripts/bench.sh [DURATION_SECONDS]      (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONNS=32
THREADS=2
step() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
  step "installing wrk (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
step "cargo build --release"
cargo build --release --quiet -p shroud --bin shroud
cargo build --release --quiet -p shroud-server --example trivial

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

SP=$(port); ROOT="bench-root-$RANDOM$RANDOM"
step "starting shroud (release, sqlite storage, static seal) on 127.0.0.1:$SP"
SHROUD_DEV_ROOT_TOKEN=$ROOT ./target/release/shroud server --dev --listen 127.0.0.1:$SP --data "$work/data" >"$work/server.log" 2>&1 &
pids+=($!); SPID=$!
A=http://127.0.0.1:$SP
wait_up "$A/v1/sys/health"
sleep 1
RSS_IDLE=$(awk '/VmRSS/ {print $2}' /proc/$SPID/status)

api() { curl -fsS -H "X-Vault-Token: $ROOT" "$@"; }
api -X PUT "$A/v1/sys/audit/file" -d "{\"type\":\"file\",\"options\":{\"file_path\":\"$work/audit.log\"}}"
api -X PUT "$A/v1/sys/policies/acl/bench" -d '{"policy":"path \"secret/data/bench/*\" { capabilities = [\"create\",\"read\",\"update\"] }\npath \"transit/encrypt/bench\" { capabilities = [\"update\"] }"}'
api -X POST "$A/v1/transit/keys/bench" -d '{"type":"aes256-gcm96"}' >/dev/null
TOKEN=$(api -X POST "$A/v1/auth/token/create" -d '{"policies":["bench"],"ttl":"2h","no_default_policy":true}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["client_token"])')
curl -fsS -H "X-Vault-Token: $TOKEN" -X POST "$A/v1/secret/data/bench/read" -d '{"data":{"password":"correct-horse-battery-staple","user":"app"}}' >/dev/null
curl -fsS -H "X-Vault-Token: $TOKEN" "$A/v1/secret/data/bench/read" >"$work/body.json"

TP=$(port)
step "starting the trivial axum baseline on 127.0.0.1:$TP"
./target/release/examples/trivial 127.0.0.1:$TP "$work/body.json" &
pids+=($!)
wait_up "http://127.0.0.1:$TP/"

cat >"$work/write.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local key = math.random(1, 100000)
  return wrk.format("POST", "/v1/secret/data/bench/w" .. key, nil,
    '{"data":{"password":"p-' .. counter .. '","user":"app"}}')
end
LUA
PT=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(64)).decode())')
cat >"$work/encrypt.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"plaintext":"$PT"}'
LUA
python3 - "$work/batch.lua" <<'PY'
import base64, json, os, sys
items = [{"plaintext": base64.b64encode(os.urandom(64)).decode(), "reference": str(i)} for i in range(1000)]
body = json.dumps({"batch_input": items})
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.body = [[' + body + ']]\n')
PY
rps() { awk '/Requests\/sec/ {print $2}'; }
errs() { awk '/Non-2xx|Socket errors/ {print}'; }

# Each phase starts from a quiet machine (the previous phase's dirty pages written back), and
# each ratio is taken against a baseline measured right before it: this VM's speed drifts
# over minutes, so one baseline at the start would compare phases run at different speeds.
settle() { sync; sleep 2; }
settle
step "trivial server: GET, $CONNS connections, ${DUR}s"
wrk -t$THREADS -c$CONNS -d${DUR}s "http://127.0.0.1:$TP/v1/secret/data/bench/read" >"$work/triv.txt"
step "shroud: KV v2 read, policy-limited token, audit on, $CONNS connections, ${DUR}s"
wrk -t$THREADS -c$CONNS -d${DUR}s -H "X-Vault-Token: $TOKEN" "$A/v1/secret/data/bench/read" >"$work/read.txt"
settle
step "shroud: KV v2 durable write (sqlite, synchronous=FULL), $CONNS connections, ${DUR}s"
wrk -t$THREADS -c$CONNS -d${DUR}s -s "$work/write.lua" -H "X-Vault-Token: $TOKEN" "$A/" >"$work/write.txt"

settle
step "trivial server again (baseline for transit), $CONNS connections, ${DUR}s"
wrk -t$THREADS -c$CONNS -d${DUR}s "http://127.0.0.1:$TP/v1/secret/data/bench/read" >"$work/triv2.txt"
step "shroud: transit encrypt of 64 bytes, $CONNS connections, ${DUR}s"
wrk -t$THREADS -c$CONNS -d${DUR}s -s "$work/encrypt.lua" -H "X-Vault-Token: $TOKEN" "$A/v1/transit/encrypt/bench" >"$work/enc.txt"
settle
step "shroud: transit batch encrypt, 1,000 items per request, 8 connections, ${DUR}s"
wrk -t$THREADS -c8 -d${DUR}s -s "$work/batch.lua" -H "X-Vault-Token: $TOKEN" "$A/v1/transit/encrypt/bench" >"$work/batch.txt"

T=$(rps <"$work/triv.txt"); T2=$(rps <"$work/triv2.txt"); R=$(rps <"$work/read.txt"); W=$(rps <"$work/write.txt")
E=$(rps <"$work/enc.txt"); B=$(rps <"$work/batch.txt")
for f in read write enc batch; do if errs <"$work/$f.txt" | grep -q .; then echo "errors in $f run:"; errs <"$work/$f.txt"; fi; done
RSS_AFTER=$(awk '/VmRSS/ {print $2}' /proc/$SPID/status)
AUDIT_LINES=$(wc -l <"$work/audit.log")
if shroud_out=$(./target/release/shroud audit verify "$work/audit.log" 2>&1); then :; fi
python3 - "$T" "$R" "$W" "$RSS_IDLE" "$RSS_AFTER" "$AUDIT_LINES" "$shroud_out" "$E" "$B" "$T2" <<'PY'
import sys
t, r, w = map(float, sys.argv[1:4]); idle, after, lines = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
e, b, t2 = float(sys.argv[8]), float(sys.argv[9]), float(sys.argv[10])
print()
print(f"trivial axum baseline   {t:12,.0f} req/s   (measured before the read run)")
print(f"shroud KV v2 read       {r:12,.0f} req/s   ratio {r/t:.2f} of baseline   (target >= 0.60)")
print(f"shroud KV v2 write      {w:12,.0f} req/s   durable, audited            (target >= 8,000)")
print(f"trivial axum baseline   {t2:12,.0f} req/s   (measured before the encrypt run)")
print(f"shroud transit encrypt  {e:12,.0f} req/s   ratio {e/t2:.2f} of baseline   (target >= 0.50)")
print(f"shroud transit batch    {b*1000:12,.0f} items/s ({b:,.1f} requests of 1,000 items/s)")
print(f"shroud idle RSS         {idle/1024:12.1f} MiB                            (target <= 20)")
print(f"shroud RSS after load   {after/1024:12.1f} MiB")
print(f"audit log               {lines:12,d} lines; verify: {sys.argv[7].strip()}")
PY
