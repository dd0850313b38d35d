#!/usr/bin/env bash
# Benchmark (not a test): the release server with a file audit device and a policy-limited
# token, KV v2 reads, durable writes and transit encryption over HTTP keep-alive with 32
# connections (wrk), next to a trivial axum server that answers the same requests with the same
# JSON body, measured in the same run.
#
#   scripts/bench.sh [SECONDS] [ROUNDS]      (defaults 10 and 5)
#
# Ratios come from ROUNDS rounds, each one run of the trivial server and one of shroud back to
# back (SECONDS / 2 each, the order alternating), and are the median of the per-round ratios:
# this VM's speed drifts by 15% and more within a minute, so runs far apart in time would
# compare different machines. Writes run once for SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
ROUNDS=${2:-5}
HALF=$(( (DUR + 1) / 2 ))
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
curl -fsS -H "X-Vault-Token: $TOKEN" -X POST "$A/v1/transit/encrypt/bench" -d "{\"plaintext\":\"$PT\"}" >"$work/enc-body.json"
python3 - "$work/batch.lua" <<'PY'
import base64, json, os, sys
items = [{"plaintext": base64.b64encode(os.urandom(64)).decode(), "reference": str(i)} for i in range(1000)]
body = json.dumps({"batch_input": items})
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.body = [[' + body + ']]\n')
PY

# Two baselines, each answering with the body of the shroud request it stands beside: the KV
# read reply (to GETs) and a transit encrypt reply (to the same POSTs, body and all).
TP=$(port); TE=$(port)
step "starting the trivial axum baselines on 127.0.0.1:$TP (read reply) and 127.0.0.1:$TE (encrypt reply)"
./target/release/examples/trivial 127.0.0.1:$TP "$work/body.json" &
pids+=($!)
./target/release/examples/trivial 127.0.0.1:$TE "$work/enc-body.json" &
pids+=($!)
wait_up "http://127.0.0.1:$TP/"
wait_up "http://127.0.0.1:$TE/"

rps() { awk '/Requests\/sec/ {print $2}'; }
# A run with non-2xx answers measured something else: print them and stop. Socket errors
# (wrk's 2 s timeouts) are reported and the run kept.
checked() {
  local name=$1 out
  out=$(cat)
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "non-2xx answers in the $name run:" >&2; grep 'Non-2xx' <<<"$out" >&2; exit 1
  fi
  if grep -q 'Socket errors' <<<"$out"; then
    echo "warning: $name run: $(grep 'Socket errors' <<<"$out")" >&2
  fi
  rps <<<"$out"
}
# Each phase starts from a quiet machine (the previous phase's dirty pages written back).
settle() { sync; sleep 2; }

# rounds NAME BASELINE_ARGS -- SHROUD_ARGS: ROUNDS back-to-back pairs, order alternating;
# writes "baseline shroud" per round to $work/NAME.rounds.
rounds() {
  local name=$1; shift
  local base=() mine=()
  while [ "$1" != "--" ]; do base+=("$1"); shift; done; shift
  mine=("$@")
  : >"$work/$name.rounds"
  for r in $(seq 1 "$ROUNDS"); do
    local b m
    if (( r % 2 )); then
      b=$(wrk -t$THREADS -c$CONNS -d${HALF}s "${base[@]}" | checked "$name baseline")
      m=$(wrk -t$THREADS -c$CONNS -d${HALF}s "${mine[@]}" | checked "$name")
    else
      m=$(wrk -t$THREADS -c$CONNS -d${HALF}s "${mine[@]}" | checked "$name")
      b=$(wrk -t$THREADS -c$CONNS -d${HALF}s "${base[@]}" | checked "$name baseline")
    fi
    echo "$b $m" >>"$work/$name.rounds"
    printf '    round %d: baseline %s req/s, shroud %s req/s\n' "$r" "$b" "$m" >&2
  done
}

settle
step "KV v2 read (policy-limited token, audit on) vs trivial GET: $ROUNDS rounds of ${HALF}s + ${HALF}s, $CONNS connections"
rounds read "http://127.0.0.1:$TP/v1/secret/data/bench/read" -- \
  -H "X-Vault-Token: $TOKEN" "$A/v1/secret/data/bench/read"
settle
step "shroud: KV v2 durable write (sqlite, synchronous=FULL), $CONNS connections, ${DUR}s"
W=$(wrk -t$THREADS -c$CONNS -d${DUR}s -s "$work/write.lua" -H "X-Vault-Token: $TOKEN" "$A/" | checked write)
settle
step "transit encrypt of 64 bytes vs trivial answering the same POST: $ROUNDS rounds of ${HALF}s + ${HALF}s, $CONNS connections"
rounds enc -s "$work/encrypt.lua" "http://127.0.0.1:$TE/v1/transit/encrypt/bench" -- \
  -s "$work/encrypt.lua" -H "X-Vault-Token: $TOKEN" "$A/v1/transit/encrypt/bench"
settle
step "shroud: transit batch encrypt, 1,000 items per request, 8 connections, ${DUR}s"
B=$(wrk -t$THREADS -c8 -d${DUR}s -s "$work/batch.lua" -H "X-Vault-Token: $TOKEN" "$A/v1/transit/encrypt/bench" | checked batch)

RSS_AFTER=$(awk '/VmRSS/ {print $2}' /proc/$SPID/status)
AUDIT_LINES=$(wc -l <"$work/audit.log")
if shroud_out=$(./target/release/shroud audit verify "$work/audit.log" 2>&1); then :; fi
python3 - "$work" "$W" "$B" "$RSS_IDLE" "$RSS_AFTER" "$AUDIT_LINES" "$shroud_out" <<'PY'
import statistics, sys
work, w, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
idle, after, lines, verify = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7].strip()
def load(name):
    pairs = [tuple(map(float, l.split())) for l in open(f"{work}/{name}.rounds") if l.strip()]
    ratios = [m / t for t, m in pairs]
    return (statistics.median(t for t, _ in pairs), statistics.median(m for _, m in pairs),
            statistics.median(ratios), min(ratios), max(ratios), len(pairs))
print()
for name, label, target in [("read", "KV v2 read", 0.60), ("enc", "transit encrypt 64 B", 0.50)]:
    t, m, r, lo, hi, n = load(name)
    print(f"{label:22} {m:10,.0f} req/s   trivial {t:10,.0f} req/s   "
          f"ratio {r:.2f} (median of {n} rounds, {lo:.2f}-{hi:.2f})   target >= {target:.2f}")
print(f"{'KV v2 durable write':22} {w:10,.0f} req/s   audited, fsync per commit          target >= 8,000")
print(f"{'transit batch encrypt':22} {b*1000:10,.0f} items/s ({b:,.1f} requests of 1,000 items/s)")
print(f"{'idle RSS':22} {idle/1024:10.1f} MiB                                          target <= 20")
print(f"{'RSS after load':22} {after/1024:10.1f} MiB")
print(f"{'audit log':22} {lines:10,d} lines; verify: {verify}")
PY
