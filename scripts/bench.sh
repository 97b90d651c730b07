#!/usr/bin/env bash
# Benchmark of the release binary on loopback, embedded store: catalog throughput and latency
# next to a trivial baseline (GET /healthz of the same binary), last_operation throughput (an
# instance in progress and a finished one), process start -> first 200, peak RSS under the
# catalog load, SAKURA and store calls per lifecycle and per idle poll, binary and zip sizes.
# Prints ONE markdown table on stdout; progress goes to stderr.
#
#   scripts/bench.sh
#
# Environment: BENCH_DURATION (seconds per wrk run, 10), BENCH_STARTS (start-up samples, 20),
# BENCH_WRK_THREADS (wrk threads, 1), BENCH_NO_BUILD=1 (use the binary as it is),
# CARGO_TARGET_DIR. Needs curl and python3; installs wrk with apt-get when missing. The load
# generator runs on the same machine as the broker, so on a small box they share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${BENCH_DURATION:-10}"
starts="${BENCH_STARTS:-20}"
wrk_threads="${BENCH_WRK_THREADS:-1}"
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/osb-sacloud"

log() { printf '== %s\n' "$*" >&2; }

if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
    log "cargo build --release"
    cargo build --release --locked --bin osb-sacloud >&2
fi
[ -x "$bin" ] || { echo "error: $bin is missing (build it, or unset BENCH_NO_BUILD)" >&2; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y wrk >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y wrk >&2; }
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

user=bench
pass=bench-password-0123456789
auth="Basic $(printf '%s:%s' "$user" "$pass" | base64 -w0)"
mariadb=c4f353f3-8a59-437d-b4af-6a6f856248db
mariadb_10g=7320351e-4664-4df5-938c-c0bfe8551609
provision_body='{"service_id":"'$mariadb'","plan_id":"'$mariadb_10g'","organization_guid":"bench","space_guid":"bench","context":{"platform":"kubernetes","namespace":"bench"},"parameters":{"switchID":"112233445566","ipaddress":"192.168.0.11","maskLen":24,"defaultRoute":"192.168.0.1"}}'

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# spawn NAME ENV=VALUE... -- ARGS...: run the binary in the background, logging to $work/NAME.log;
# its pid is left in $spawned.
spawned=""
spawn() {
    local name=$1
    shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" "$bin" "$@" >"$work/$name.log" 2>&1 &
    spawned=$!
    pids+=("$spawned")
}

wait_http() { # URL: wait up to 15 s for any HTTP answer
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.05
    done
    echo "error: nothing answers at $1" >&2
    exit 1
}

osb() { # METHOD URL [BODY]: print the answer's body
    local args=(-s -X "$1" -H "Authorization: $auth" -H 'X-Broker-API-Version: 2.17')
    [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
    curl "${args[@]}" "$2"
}

poll_until_done() { # BROKER INSTANCE
    for _ in $(seq 1 600); do
        state=$(osb GET "$1/v2/service_instances/$2/last_operation" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))')
        [ "$state" = "in progress" ] || { echo "$state"; return 0; }
        sleep 0.2
    done
    echo timeout
}

# wrk reports through this script: requests/s, p50 and p99 in ms, errors (non-2xx included).
cat >"$work/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %.0f %.3f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

load() { # URL CONNECTIONS [SECONDS] -> "rps p50 p99 errors"
    local t=$wrk_threads
    [ "$2" -ge "$t" ] || t=$2
    wrk -t"$t" -c"$2" -d"${3:-$duration}s" --latency -H "Authorization: $auth" \
        -H 'X-Broker-API-Version: 2.17' -s "$work/report.lua" "$1" | awk '/^WRK /{print $2, $3, $4, $5}'
}

common=(OSB_USERNAME="$user" OSB_PASSWORD="$pass" RUST_LOG=warn OSB_BINDING_MODE=shared)

machine="$(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/{printf "%.1f", $2 / 1048576}' /proc/meminfo) GiB, Linux $(uname -r | cut -d- -f1), load average $(cut -d' ' -f1 /proc/loadavg) at the start"

# --- Broker A: fake mode, default simulator timings. The catalog load and its peak RSS come first,
# on a process that has served nothing else; then one provision, the finished poll, and the peak
# RSS of a broker that has also talked to SAKURA Cloud.
port_a=$(free_port)
spawn broker-a "${common[@]}" SAKURACLOUD_FAKE_MODE=1 OSB_LISTEN="127.0.0.1:$port_a" OSB_DATA_DIR="$work/a" -- serve
pid_a=$spawned
a="http://127.0.0.1:$port_a"
wait_http "$a/healthz"
catalog_bytes=$(osb GET "$a/v2/catalog" | wc -c)

log "warm-up"
load "$a/v2/catalog" 16 2 >/dev/null
declare -A catalog base
for c in 1 16 64; do
    log "GET /healthz, $c connections"
    base[$c]=$(load "$a/healthz" "$c")
    log "GET /v2/catalog, $c connections"
    catalog[$c]=$(load "$a/v2/catalog" "$c")
done
rss_kb=$(awk '/^VmHWM/{print $2}' "/proc/$pid_a/status")

log "provisioning an instance to poll once finished"
osb PUT "$a/v2/service_instances/done-1?accepts_incomplete=true" "$provision_body" >/dev/null
done_state=$(poll_until_done "$a" done-1)
[ "$done_state" = succeeded ] || { echo "error: provision ended $done_state" >&2; exit 1; }
log "last_operation of a finished instance, 16 connections"
poll_done=$(load "$a/v2/service_instances/done-1/last_operation" 16)
log "GET /v2/catalog again, 64 connections, after the provision"
load "$a/v2/catalog" 64 >/dev/null
rss_after_kb=$(awk '/^VmHWM/{print $2}' "/proc/$pid_a/status")

# --- Broker B on a slow standalone simulator: polls of an instance in progress. The client's
# own rate limit (5/s by default, SAKURA's) is lifted to measure the broker, not the limit.
port_ss=$(free_port)
spawn sim-slow SIMULATOR_MIGRATING_MS=600000 RUST_LOG=warn -- simulator --listen "127.0.0.1:$port_ss"
sim_slow="http://127.0.0.1:$port_ss"
wait_http "$sim_slow/_simulator/counters"
port_b=$(free_port)
spawn broker-b "${common[@]}" SAKURACLOUD_API_ROOT_URL="$sim_slow/cloud/zone" \
    SAKURACLOUD_ACCESS_TOKEN=fake-token SAKURACLOUD_ACCESS_TOKEN_SECRET=fake-secret \
    SAKURACLOUD_RATE_LIMIT=0 OSB_LISTEN="127.0.0.1:$port_b" OSB_DATA_DIR="$work/b" -- serve
b="http://127.0.0.1:$port_b"
wait_http "$b/healthz"
osb PUT "$b/v2/service_instances/slow-1?accepts_incomplete=true" "$provision_body" >/dev/null
log "last_operation of an instance in progress, 16 connections"
poll_busy=$(load "$b/v2/service_instances/slow-1/last_operation" 16)

# --- Broker C on a fast standalone simulator, store calls logged per request: one lifecycle.
port_sf=$(free_port)
spawn sim-fast SIMULATOR_MIGRATING_MS=300 SIMULATOR_BOOT_MS=300 SIMULATOR_CLEANING_MS=200 RUST_LOG=warn \
    -- simulator --listen "127.0.0.1:$port_sf"
sim_fast="http://127.0.0.1:$port_sf"
wait_http "$sim_fast/_simulator/counters"
port_c=$(free_port)
spawn broker-c "${common[@]}" SAKURACLOUD_API_ROOT_URL="$sim_fast/cloud/zone" \
    SAKURACLOUD_ACCESS_TOKEN=fake-token SAKURACLOUD_ACCESS_TOKEN_SECRET=fake-secret \
    RUST_LOG=warn,osb_sacloud::api::middleware=debug OSB_LOG_FORMAT=json \
    OSB_LISTEN="127.0.0.1:$port_c" OSB_DATA_DIR="$work/c" -- serve
c="http://127.0.0.1:$port_c"
wait_http "$c/healthz"
log "one full lifecycle, counting SAKURA and store calls"
lifecycle=$(python3 - "$c" "$sim_fast" "$work/broker-c.log" "$auth" "$provision_body" <<'EOF'
"""Provision, bind, unbind, deprovision one instance; count SAKURA calls (simulator counters,
read around each request) and store calls (the broker's per-request debug lines)."""
import json, sys, time, urllib.error, urllib.request

broker, sim, log_path, auth, provision = sys.argv[1:6]
requests = []  # (label, state, sakura calls)

def sakura_total():
    with urllib.request.urlopen(sim + "/_simulator/counters") as r:
        counters = json.load(r)
    return sum(v for k, v in counters.items() if not k.startswith("appliances "))

def call(label, method, path, body=None):
    before = sakura_total()
    req = urllib.request.Request(broker + path, method=method, data=body and body.encode())
    req.add_header("Authorization", auth)
    req.add_header("X-Broker-API-Version", "2.17")
    if body:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    answer = json.loads(text) if text else {}
    requests.append((label, answer.get("state", ""), sakura_total() - before))
    return status, answer

def poll(label):
    while True:
        status, answer = call(label, "GET", "/v2/service_instances/bench-1/last_operation")
        if answer.get("state") != "in progress":
            return answer.get("state")
        time.sleep(0.1)

ids = json.loads(provision)
q = f"service_id={ids['service_id']}&plan_id={ids['plan_id']}"
bind = json.dumps({"service_id": ids["service_id"], "plan_id": ids["plan_id"]})
assert call("provision", "PUT", "/v2/service_instances/bench-1?accepts_incomplete=true", provision)[0] == 202
assert poll("poll") == "succeeded"
assert call("bind", "PUT", "/v2/service_instances/bench-1/service_bindings/b-1", bind)[0] == 201
assert call("unbind", "DELETE", f"/v2/service_instances/bench-1/service_bindings/b-1?{q}")[0] == 200
assert call("deprovision", "DELETE", f"/v2/service_instances/bench-1?accepts_incomplete=true&{q}")[0] == 202
assert poll("poll") == "succeeded"
time.sleep(0.2)  # the last debug line is written before the answer; be generous anyway
lines = [json.loads(l) for l in open(log_path) if '"store calls"' in l]
assert len(lines) == len(requests), (len(lines), len(requests))
total = {"sakura": 0, "reads": 0, "queries": 0, "writes": 0}
idle = []
for (label, state, sakura), line in zip(requests, lines):
    f = line["fields"]
    calls = (sakura, f["store_reads"], f["store_queries"], f["store_writes"])
    for k, v in zip(total, calls):
        total[k] += v
    if label == "poll" and state == "in progress" and calls[3] == 0:
        idle.append(calls)
polls = sum(1 for r in requests if r[0] == "poll")
idle_kinds = sorted(set(idle))
print(json.dumps({"total": total, "requests": len(requests), "polls": polls,
                  "idle": len(idle), "idle_kinds": idle_kinds,
                  "active": {k: total[k] - sum(c[i] for c in idle) for i, k in enumerate(total)}}))
EOF
)

# --- Start -> first 200 on /v2/catalog, fresh data directory each time.
log "start -> first 200, $starts starts"
startup=$(python3 - "$bin" "$starts" "$auth" "$user" "$pass" <<'EOF'
"""Spawn the broker and connect as soon as it listens; the time from spawn to the first
200 on /v2/catalog, median over N starts (each on a fresh data directory)."""
import os, shutil, socket, statistics, subprocess, sys, tempfile, time

binary, n, auth, user, password = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
request = (f"GET /v2/catalog HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
           "X-Broker-API-Version: 2.17\r\nConnection: close\r\n\r\n").encode()
samples = []
for _ in range(n):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    data = tempfile.mkdtemp()
    env = dict(os.environ, SAKURACLOUD_FAKE_MODE="1", OSB_USERNAME=user, OSB_PASSWORD=password,
               OSB_LISTEN=f"127.0.0.1:{port}", OSB_DATA_DIR=data, RUST_LOG="warn")
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    took = None
    while took is None and time.perf_counter() - t0 < 10:
        c = socket.socket()
        try:
            c.connect(("127.0.0.1", port))
            c.sendall(request)
            head = c.recv(12)
            if head.startswith(b"HTTP/1.1 200"):
                took = time.perf_counter() - t0
        except OSError:
            time.sleep(0.0001)
        finally:
            c.close()
    proc.terminate(); proc.wait()
    shutil.rmtree(data, ignore_errors=True)
    if took is None:
        sys.exit("the broker did not answer 200 within 10 s")
    samples.append(took * 1000)
print(f"{statistics.median(samples):.1f} {min(samples):.1f} {max(samples):.1f}")
EOF
)

# --- Sizes.
bin_bytes=$(stat -c %s "$bin")
zip="${LAMBDA_DIR:-$target/lambda}/osb-sacloud/bootstrap.zip"
if [ "${BENCH_BUILD_ZIP:-1}" = 1 ]; then
    log "scripts/build.sh (arm64 Lambda zip)"
    scripts/build.sh >&2 || true
fi
if [ -f "$zip" ]; then
    zip_note=$(awk -v b="$(stat -c %s "$zip")" 'BEGIN { printf "%.1f MiB (%d bytes)", b / 1048576, b }')
else
    zip_note="n/a (scripts/build.sh did not produce $zip)"
fi

# --- The table.
python3 - "$catalog_bytes" "${base[1]}" "${catalog[1]}" "${base[16]}" "${catalog[16]}" "${base[64]}" "${catalog[64]}" \
    "$poll_busy" "$poll_done" "$startup" "$rss_kb" "$lifecycle" "$bin_bytes" "$zip_note" "$duration" \
    "$starts" "$wrk_threads" "$rss_after_kb" "$machine" <<'EOF'
import json, sys

(catalog_bytes, b1, c1, b16, c16, b64, c64, busy, done, startup, rss_kb, lifecycle, bin_bytes,
 zip_note, duration, starts, wrk_threads, rss_after_kb, machine) = sys.argv[1:]

def kib(text):
    return f"{int(text) / 1024:.1f} MiB ({int(text) * 1024 / 1e6:.1f} MB)"

def run(text):
    rps, p50, p99, errors = text.split()
    return float(rps), float(p50), float(p99), int(errors)

def load(text, base=None):
    rps, p50, p99, errors = run(text)
    out = f"{rps:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    if base:
        out += f"; {rps / run(base)[0]:.2f}× /healthz ({run(base)[0]:,.0f} req/s)"
    if errors:
        out += f"; **{errors} errors**"
    return out

life = json.loads(lifecycle)
t, a = life["total"], life["active"]
idle = "; ".join(f"{s} SAKURA, {r} read, {q} query, {w} write" for s, r, q, w in life["idle_kinds"])
med, lo, hi = startup.split()
rows = [
    ("catalog body (2.17)", f"{int(catalog_bytes):,} bytes", "2018: 7.6 kB"),
    ("GET /v2/catalog, 1 connection", load(c1, b1), ""),
    ("GET /v2/catalog, 16 connections", load(c16, b16), "≥ 63k req/s; 2018: ~42k, p99 7.4 ms"),
    ("GET /v2/catalog, 64 connections", load(c64, b64), "2018: ~44k req/s"),
    ("last_operation, in progress, 16 conns", load(busy) + " (SAKURA rate limit lifted)", ""),
    ("last_operation, finished, 16 conns", load(done), ""),
    (f"start → first 200 on /v2/catalog (median of {starts})", f"{med} ms (min {lo}, max {hi})", "≤ 5 ms; 2018: ~7.7 ms"),
    ("peak RSS under the catalog load (VmHWM)", kib(rss_kb), "≤ 12 MB; 2018: 18 MB"),
    ("peak RSS, after also provisioning and polling", kib(rss_after_kb), ""),
    ("SAKURA calls per lifecycle", f"{t['sakura']} over {life['requests']} requests ({life['polls']} polls, {life['idle']} idle); {a['sakura']} without the idle polls", ""),
    ("store calls per lifecycle", f"{t['reads']} reads, {t['queries']} queries, {t['writes']} writes; without the idle polls {a['reads']} / {a['queries']} / {a['writes']}", ""),
    ("per poll with no transition", idle or "none seen", "1 SAKURA read, 1 store read"),
    ("release binary", f"{int(bin_bytes) / 1048576:.1f} MiB ({int(bin_bytes):,} bytes)", ""),
    ("arm64 Lambda zip", zip_note, ""),
]
print(f"{machine}. wrk {duration} s per run, {wrk_threads} wrk thread(s), on the same cores as the broker.\n")
print("| measure | result | target / 2018 Go broker |")
print("|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
EOF
