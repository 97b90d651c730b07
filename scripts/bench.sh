#!/usr/bin/env bash
# Benchmark of the release binary on loopback, embedded store: catalog throughput and latency
# next to a trivial baseline (GET /healthz of the same binary), last_operation throughput (an
# instance in progress and a finished one), process start -> first 200, peak RSS under the
# catalog load, SAKURA and store calls per lifecycle and per idle poll, binary and zip sizes.
# Then a provisioning storm (see "Storm" below): N instances in progress, polled hard, on one
# broker with the file store and on three brokers sharing one DynamoDB table (moto). Then the
# Lambda cold start in the local emulator, with and without the connection warm-up.
# Prints ONE markdown table on stdout; progress goes to stderr.
#
#   scripts/bench.sh
#   BENCH_ONLY=storm BENCH_STORM_NS="10 100" scripts/bench.sh
#   BENCH_ONLY="base coldstart" scripts/bench.sh
#
# Environment: BENCH_ONLY (the sections to run, of `base`, `storm` and `coldstart`; all when
# unset), BENCH_DURATION (seconds per wrk run, 10), BENCH_STARTS (start-up samples, 20),
# BENCH_WRK_THREADS (wrk threads, 1), BENCH_NO_BUILD=1 (use the binary as it is),
# CARGO_TARGET_DIR. The storm's: BENCH_STORM_NS (instances in progress, "10 100 300"),
# BENCH_STORM_SETUPS ("file dynamodb"), BENCH_STORM_POLLERS (clients per instance, 3),
# BENCH_STORM_INTERVAL (seconds between one client's polls, 0.3), BENCH_STORM_WINDOW (seconds
# of polling whose answer times are reported, 60), BENCH_STORM_MAX_SECS (the most one run's
# lifecycles may take, 600; what has not ended by then is reported as unfinished),
# BENCH_STORM_CHECK_SECS (OSB_CHECK_INTERVAL_SECS for the brokers; unset: the broker's default).
# The cold start's: BENCH_COLD_RUNS (cold starts with the warm-up and as many without, 10).
# Needs curl and python3; installs wrk with apt-get when missing (for `base`); the storm on
# DynamoDB and the cold start need moto_server (scripts/moto.sh), the cold start cargo-lambda
# (scripts/cargo-lambda-env.sh installs it). The load generators run on the same machine as the
# broker, so on a small box they share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."

only="${BENCH_ONLY:-}"
for section in $only; do
    case "$section" in base | storm | coldstart) ;; *) echo "error: BENCH_ONLY: unknown section '$section' (base, storm, coldstart)" >&2; exit 2 ;; esac
done
runs() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; } # whether section $1 runs
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

if runs base && ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y wrk >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y wrk >&2; }
fi

work="$(mktemp -d)"
pids=()
moto_port=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -z "$moto_port" ] || MOTO_STATE_DIR="$work" scripts/moto.sh stop "$moto_port" >&2 || true
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

# The sections before the storm (`base`); they add their rows to $work/rows-base.json.
if runs base; then

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

python3 - "$work/rows-base.json" "$catalog_bytes" "${base[1]}" "${catalog[1]}" "${base[16]}" "${catalog[16]}" "${base[64]}" "${catalog[64]}" \
    "$poll_busy" "$poll_done" "$startup" "$rss_kb" "$lifecycle" "$bin_bytes" "$zip_note" "$duration" \
    "$starts" "$wrk_threads" "$rss_after_kb" <<'EOF'
import json, sys

(out, catalog_bytes, b1, c1, b16, c16, b64, c64, busy, done, startup, rss_kb, lifecycle, bin_bytes,
 zip_note, duration, starts, wrk_threads, rss_after_kb) = sys.argv[1:]

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
note = f"wrk {duration} s per run, {wrk_threads} wrk thread(s), on the same cores as the broker."
json.dump({"note": note, "rows": rows}, open(out, "w"))
EOF

fi # the sections before the storm

# --- Storm: N instances in progress (BENCH_STORM_NS), each polled by several clients every
# 0.3 s, on a standalone simulator that adds 30 ms to every SAKURA call, with a SAKURA budget of
# 5 requests per second for the deployment. Setups: one broker on the file store; three brokers
# on one DynamoDB table (moto), all on the one simulator. Each run starts everything afresh,
# measures the answer times of the polls sent in a fixed window while the instances are in
# progress, and lets the lifecycles run on (each instance deprovisioned once its provision
# succeeded) until all ended or BENCH_STORM_MAX_SECS passed. SAKURA calls per second come from
# the simulator, store calls and the store's time per poll from the brokers' debug lines,
# creates and deletes from the simulator's counters.
storm_ns="${BENCH_STORM_NS:-10 100 300}"
storm_setups="${BENCH_STORM_SETUPS:-file dynamodb}"
storm_pollers="${BENCH_STORM_POLLERS:-3}"
storm_interval="${BENCH_STORM_INTERVAL:-0.3}"
storm_window="${BENCH_STORM_WINDOW:-60}"
storm_max="${BENCH_STORM_MAX_SECS:-600}"
storm_budget=5

# stop PID...: end processes this script spawned, and forget them.
stop() {
    local p q keep=()
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    for q in "${pids[@]}"; do
        for p in "$@"; do [ "$q" != "$p" ] || continue 2; done
        keep+=("$q")
    done
    pids=("${keep[@]}")
}

# moto for the storm and the cold start, started once: DYNAMODB_ENDPOINT in $moto.
moto=""
start_moto() {
    [ -z "$moto" ] || return 0
    command -v moto_server >/dev/null 2>&1 || { echo "error: moto_server is missing (pip install 'moto[server]')" >&2; exit 1; }
    moto_port=$(free_port)
    log "moto on port $moto_port"
    MOTO_STATE_DIR="$work" scripts/moto.sh start "$moto_port" >&2
    moto="http://127.0.0.1:$moto_port"
}

if runs storm; then
cat >"$work/storm.py" <<'EOF'
"""A provisioning storm: N instances, each provisioned, polled by P clients every INTERVAL
seconds until its provision ends, then deprovisioned and polled until gone. Every poll is timed
from the first byte sent to the last byte of the answer. Answer times are kept for the polls
sent inside the measuring window (WINDOW seconds from the moment every provision was
answered); the lifecycles run on until all ended or MAX_SECS have passed. Loopback only,
bounded in count (each client stops with its instance, or at the deadline) and in time.

One asyncio loop and hand-written HTTP/1.1 over keep-alive connections, one per client:
a thread per client with http.client would put hundreds of threads behind the GIL, and the
load generator's own scheduling would show up as answer time. Its lag is measured and reported
(a task that asks to sleep 10 ms and records how late it wakes).

Prints one JSON object."""
import asyncio, json, random, sys, time
from urllib.parse import urlsplit

(brokers, auth, provision_body, n, pollers, interval, window, max_secs, moto, table) = sys.argv[1:11]
brokers = brokers.split(",")
n, pollers = int(n), int(pollers)
interval, window, max_secs = float(interval), float(window), float(max_secs)
ids = json.loads(provision_body)
query = f"service_id={ids['service_id']}&plan_id={ids['plan_id']}"


class Conn:
    """One keep-alive HTTP/1.1 connection, opened on first use and again after an error."""

    def __init__(self, base, headers):
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader = self.writer = None

    async def close(self):
        if self.writer:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method, path, body=b""):
        for attempt in (0, 1):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                req = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.head}"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                self.writer.write(req)
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionError("closed")
                status = int(status_line.split()[1])
                length, chunked, close = 0, False, False
                while True:
                    line = await self.reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    k, v = k.strip().lower(), v.strip().lower()
                    if k == "content-length":
                        length = int(v)
                    elif k == "transfer-encoding" and "chunked" in v:
                        chunked = True
                    elif k == "connection" and v == "close":
                        close = True
                if chunked:
                    data = b""
                    while True:
                        size = int((await self.reader.readline()).split(b";")[0], 16)
                        chunk = await self.reader.readexactly(size + 2)
                        if size == 0:
                            break
                        data += chunk[:-2]
                else:
                    data = await self.reader.readexactly(length) if length else b""
                if close:
                    await self.close()
                return status, data
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                await self.close()
                if attempt:
                    return 0, b""
        return 0, b""


osb_headers = {"Authorization": auth, "X-Broker-API-Version": "2.17",
               "Content-Type": "application/json"}
polls = []        # (sent_at, seconds, status, broker) for every poll
others = []       # (sent_at, seconds, method, status) for PUT and DELETE
lag = []          # how late a 10 ms sleep woke, seconds
moto_times = []   # direct GetItem round trips, seconds
window_start = [None]
deadline = time.monotonic() + max_secs


class Instance:
    def __init__(self, i):
        self.id = f"storm-{i:04d}-{random.getrandbits(32):08x}"
        self.i = i
        self.phase = "new"          # new, provision, deprovision, done, failed, timeout
        self.provisioned = asyncio.Event()
        self.ended = asyncio.Event()
        self.put_status = self.delete_status = None


async def timed(conn, method, path, body=b""):
    t0 = time.monotonic()
    status, data = await conn.request(method, path, body)
    return t0, time.monotonic() - t0, status, data


async def poller(inst, p):
    b = (inst.i + p) % len(brokers)
    conn = Conn(brokers[b], osb_headers)
    path = f"/v2/service_instances/{inst.id}/last_operation"
    next_at = time.monotonic() + random.random() * interval
    try:
        while not inst.ended.is_set() and time.monotonic() < deadline:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += interval
            if next_at < time.monotonic():  # late: skip the ticks missed, never burst
                next_at = time.monotonic() + interval
            if inst.ended.is_set():
                break
            phase = inst.phase
            t0, took, status, data = await timed(conn, "GET", path)
            polls.append((t0, took, status, b))
            state = ""
            if status == 200:
                try:
                    state = json.loads(data).get("state", "")
                except ValueError:
                    pass
            if phase == "provision":
                if state == "succeeded":
                    inst.provisioned.set()
                elif state == "failed":
                    inst.phase = "failed"
                    inst.ended.set()
            elif phase == "deprovision":
                if state == "succeeded" or status == 410:
                    inst.phase = "done"
                    inst.ended.set()
                elif state == "failed":
                    inst.phase = "failed"
                    inst.ended.set()
    finally:
        await conn.close()


async def lifecycle(inst, start_gate):
    conn = Conn(brokers[inst.i % len(brokers)], osb_headers)
    try:
        await start_gate.wait()
        t0, took, status, _ = await timed(
            conn, "PUT", f"/v2/service_instances/{inst.id}?accepts_incomplete=true",
            provision_body.encode())
        others.append((t0, took, "PUT", status))
        inst.put_status = status
        if status != 202:
            inst.phase = "failed"
            inst.ended.set()
            return
        inst.phase = "provision"
        clients = [asyncio.create_task(poller(inst, p)) for p in range(pollers)]
        left = deadline - time.monotonic()
        try:
            await asyncio.wait_for(inst.provisioned.wait(), max(left, 0.01))
        except asyncio.TimeoutError:
            pass
        if inst.provisioned.is_set() and inst.phase == "provision":
            t0, took, status, _ = await timed(
                conn, "DELETE", f"/v2/service_instances/{inst.id}?accepts_incomplete=true&{query}")
            others.append((t0, took, "DELETE", status))
            inst.delete_status = status
            if status == 202:
                inst.phase = "deprovision"
            else:
                inst.phase = "failed"
                inst.ended.set()
        await asyncio.gather(*clients)
        if not inst.ended.is_set():
            inst.timed_out_in = inst.phase
            inst.phase = "timeout"
    finally:
        await conn.close()


async def loop_lag(stop):
    while not stop.is_set():
        t0 = time.monotonic()
        await asyncio.sleep(0.01)
        lag.append(time.monotonic() - t0 - 0.01)


async def moto_probe(stop):
    """GetItem of an absent key straight to moto, every 50 ms: moto's own answer time."""
    u = urlsplit(moto)
    conn = Conn(moto, {
        "X-Amz-Target": "DynamoDB_20120810.GetItem",
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Date": "20250101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=00",
    })
    body = json.dumps({"TableName": table, "ConsistentRead": True,
                       "Key": {"pk": {"S": "probe#absent"}, "sk": {"S": "meta"}}}).encode()
    while not stop.is_set():
        t0, took, status, _ = await timed(conn, "POST", "/", body)
        if status == 200 and window_start[0] and t0 <= window_start[0] + window:
            moto_times.append(took)
        await asyncio.sleep(0.05)
    await conn.close()


async def main():
    insts = [Instance(i) for i in range(n)]
    gate = asyncio.Event()
    stop = asyncio.Event()
    helpers = [asyncio.create_task(loop_lag(stop))]
    if moto:
        helpers.append(asyncio.create_task(moto_probe(stop)))
    tasks = [asyncio.create_task(lifecycle(x, gate)) for x in insts]
    started = time.monotonic()
    load_start = open("/proc/loadavg").read().split()[0]
    gate.set()
    while any(x.phase == "new" for x in insts) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    window_start[0] = time.monotonic()
    wall_window = time.time()
    await asyncio.gather(*tasks)
    stop.set()
    await asyncio.gather(*helpers)
    ended = time.monotonic()
    w0, w1 = window_start[0], window_start[0] + window
    in_window = [(s, st) for t, s, st, _ in polls if w0 <= t < w1]
    by_phase = {}
    for x in insts:
        key = x.phase if x.phase != "timeout" else f"unfinished ({x.timed_out_in})"
        by_phase[key] = by_phase.get(key, 0) + 1
    writes = [s for _, s, _, _ in others]
    print(json.dumps({
        "pollers": pollers, "interval": interval,
        "load_average": [load_start, open("/proc/loadavg").read().split()[0]],
        "wall_window": [wall_window, wall_window + min(window, ended - w0)],
        "window_secs": min(window, ended - w0),
        "elapsed": ended - started,
        "puts_answered_after": w0 - started,
        "window": summary([s for s, _ in in_window]),
        "window_errors": sum(1 for _, st in in_window if st != 200),
        "all": summary([s for _, s, _, _ in polls]),
        "all_errors": sum(1 for _, _, st, _ in polls if st != 200),
        "statuses": {str(st): sum(1 for _, _, x, _ in polls if x == st) for st in {x for _, _, x, _ in polls}},
        "puts_deletes": summary(writes),
        "bad_puts_deletes": sorted({f"{m} {st}" for _, _, m, st in others if st != 202}),
        "lag": summary(lag),
        "moto": summary(moto_times),
        "phases": by_phase,
        "done_ids": [x.id for x in insts if x.phase == "done"],
        "ids": [x.id for x in insts],
    }))


def summary(samples):
    """Count, p50, p99 and max in milliseconds."""
    if not samples:
        return {"count": 0}
    xs = sorted(samples)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000
    return {"count": len(xs), "p50": pick(0.5), "p99": pick(0.99), "max": xs[-1] * 1000}


asyncio.run(main())
EOF
cat >"$work/storm-report.py" <<'EOF'
"""One storm run's rows: answer times (the load generator's), SAKURA calls per second (the
simulator's), store calls and the store's time per poll (the brokers' debug lines, polls sent in
the measuring window), and whether every lifecycle ended right (the simulator's counters and
the appliances it still holds)."""
import json, os, sys
from datetime import datetime

setup, n, brokers, budget, run, *logs = sys.argv[1:]
n, brokers, budget = int(n), int(brokers), int(budget)
load = json.load(open(os.path.join(run, "load.json")))
per_second = {int(k): v for k, v in json.load(open(os.path.join(run, "per_second.json"))).items()}
counters = json.load(open(os.path.join(run, "counters.json")))
appliances = json.load(open(os.path.join(run, "appliances.json")))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


# Store calls per poll, in the window, from every broker's debug lines.
w0, w1 = load["wall_window"]
polls, timed = [], []
for path in logs:
    for line in open(path):
        if '"store calls"' not in line or "last_operation" not in line:
            continue
        v = json.loads(line)
        f = v["fields"]
        if f.get("method") != "GET":
            continue
        at = datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00")).timestamp()
        if not w0 <= at < w1 + 1:
            continue
        calls = (f["store_reads"], f["store_queries"], f["store_writes"], f.get("store_budget", 0))
        polls.append(calls)
        if "took_ms" in f:
            timed.append((f["took_ms"], f["store_ms"]))

per_poll = [sum(c[i] for c in polls) / max(len(polls), 1) for i in range(4)]
read_only = sum(1 for c in polls if c == (1, 0, 0, 0)) / max(len(polls), 1)

# SAKURA: the busiest second of the whole run.
busiest = max(per_second.values(), default=0)
sakura_total = sum(per_second.values())

# Lifecycles: each instance provisioned then deprovisioned, one create and one delete each.
created = counters.get("appliances created", 0)
deleted = counters.get("appliances deleted", 0)
live = [a["name"] for a in appliances]
done = set(load["done_ids"])
phases = load["phases"]
everyone = len(done) == n
right = (
    created - deleted == len(live)
    and len(set(live)) == len(live)
    and not any(name.removeprefix("osb-") in done for name in live)
    and created <= n
    and "failed" not in phases
    and not load["bad_puts_deletes"]
    and (not everyone or (created == n and deleted == n and not live))
)

w, a, pd, lag = load["window"], load["all"], load["puts_deletes"], load["lag"]
label = f"{n} instances, " + ("1 broker, file store" if setup == "file" else f"{brokers} brokers, one DynamoDB table (moto)")
answer = (f"p50 {w['p50']:.1f} ms, p99 {w['p99']:.1f} ms, max {w['max']:.0f} ms over {load['window_secs']:.0f} s "
          f"({w['count']:,} polls, {w['count'] / max(load['window_secs'], 1):,.0f}/s of {n * load['pollers'] / load['interval']:,.0f}/s offered"
          + (f", **{load['window_errors']} not 200**" if load["window_errors"] else "")
          + f"); whole run max {a['max']:.0f} ms over {a['count']:,} polls"
          + (f", **{load['all_errors']} not 200** ({', '.join(f'{k}: {v}' for k, v in sorted(load['statuses'].items()) if k != '200')})" if load["all_errors"] else "")
          + f"; PUT/DELETE max {pd.get('max', 0):.0f} ms; load generator lag p99 {lag.get('p99', 0):.1f} ms"
          + f"; load average {load['load_average'][0]} at the start, {load['load_average'][1]} at the end")
store = (f"{per_poll[0]:.2f} reads, {per_poll[2]:.2f} writes, {per_poll[3]:.2f} budget counts"
         + (f", {per_poll[1]:.2f} queries" if per_poll[1] else "")
         + f" ({read_only:.0%} of {len(polls):,} polls: 1 read only)")
if timed:
    took = [t for t, _ in timed]
    spent = [s for _, s in timed]
    own = [max(t - s, 0.0) for t, s in timed]
    share = sum(spent) / max(sum(took), 1e-9)
    store += (f"; in the broker p50 {pct(took, 0.5):.1f} / p99 {pct(took, 0.99):.1f} ms per poll, "
              f"of which waiting for the store p50 {pct(spent, 0.5):.1f} / p99 {pct(spent, 0.99):.1f} ms ({share:.0%} of the time), "
              f"the rest p50 {pct(own, 0.5):.1f} / p99 {pct(own, 0.99):.1f} ms")
if load["moto"].get("count"):
    m = load["moto"]
    store += f"; moto's own GetItem meanwhile p50 {m['p50']:.1f} / p99 {m['p99']:.1f} ms"
if everyone:
    ends = f"all {n} provisioned and deprovisioned in {load['elapsed']:.0f} s"
else:
    parts = ", ".join(f"{v} {k}" for k, v in sorted(phases.items()))
    ends = f"in {load['elapsed']:.0f} s: {parts}"
ends += f"; {created} creates, {deleted} deletes, {len(live)} appliances left" + ("" if right else " — **wrong**")
rows = [
    (f"storm: {label}: answer time", answer,
     "N=100, 3 brokers: p99 ≤ 100 ms, none over 1 s; flat from N=10 to 300"),
    (f"storm: {label}: SAKURA, store", f"busiest second {busiest} SAKURA calls ({sakura_total:,} in {len(per_second)} s); per poll {store}",
     f"≤ {budget} + 1 per second (the budget)"),
    (f"storm: {label}: lifecycles", ends, "each provisioned then deprovisioned, one create and one delete each"),
]
note = (f"Storm: {load['pollers']} clients per instance, one poll each every {load['interval']} s, "
        f"SAKURA budget {budget}/s, simulator +30 ms per call.")
print(json.dumps({"note": note, "rows": rows}))
EOF

[[ " $storm_setups " != *" dynamodb "* ]] || start_moto

storm_run() { # SETUP N: one run; leaves its rows in $work/storm-rows-SETUP-N.json
    local setup=$1 n=$2 brokers=1 run="$work/storm-$1-$2" port sim i urls=() procs=() env=()
    mkdir -p "$run"
    port=$(free_port)
    spawn "storm-sim-$setup-$n" RUST_LOG=warn SIMULATOR_FAULTS='{"routes":{"*":{"latency_ms":30}}}' \
        -- simulator --listen "127.0.0.1:$port"
    procs+=("$spawned")
    sim="http://127.0.0.1:$port"
    wait_http "$sim/_simulator/counters"
    env=(OSB_USERNAME="$user" OSB_PASSWORD="$pass" OSB_BINDING_MODE=shared
        SAKURACLOUD_API_ROOT_URL="$sim/cloud/zone" SAKURACLOUD_ACCESS_TOKEN=fake-token
        SAKURACLOUD_ACCESS_TOKEN_SECRET=fake-secret SAKURACLOUD_RATE_LIMIT="$storm_budget"
        RUST_LOG=warn,osb_sacloud::api::middleware=debug OSB_LOG_FORMAT=json OSB_MAX_CONNECTIONS=4096)
    [ -z "${BENCH_STORM_CHECK_SECS:-}" ] || env+=(OSB_CHECK_INTERVAL_SECS="$BENCH_STORM_CHECK_SECS")
    if [ "$setup" = dynamodb ]; then
        brokers=3
        env+=(OSB_TABLE="osb-storm-$n-$$" DYNAMODB_ENDPOINT="$moto" AWS_ACCESS_KEY_ID=test
            AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true)
        env "${env[@]}" "$bin" create-table >&2
    else
        env+=(OSB_DATA_DIR="$run/data")
    fi
    for i in $(seq 1 "$brokers"); do
        port=$(free_port)
        spawn "storm-$setup-$n-broker-$i" "${env[@]}" OSB_LISTEN="127.0.0.1:$port" -- serve
        procs+=("$spawned")
        urls+=("http://127.0.0.1:$port")
        wait_http "http://127.0.0.1:$port/healthz"
    done
    log "storm: $setup, $brokers broker(s), $n instances, $storm_pollers clients each every ${storm_interval}s (window ${storm_window}s, at most ${storm_max}s)"
    python3 "$work/storm.py" "$(IFS=,; echo "${urls[*]}")" "$auth" "$provision_body" "$n" \
        "$storm_pollers" "$storm_interval" "$storm_window" "$storm_max" \
        "$([ "$setup" = dynamodb ] && echo "$moto")" "osb-storm-$n-$$" >"$run/load.json"
    curl -s "$sim/_simulator/per_second" >"$run/per_second.json"
    curl -s "$sim/_simulator/counters" >"$run/counters.json"
    curl -s "$sim/_simulator/appliances" >"$run/appliances.json"
    stop "${procs[@]}"
    python3 "$work/storm-report.py" "$setup" "$n" "$brokers" "$storm_budget" "$run" \
        "$work"/storm-"$setup"-"$n"-broker-*.log >"$work/storm-rows-$setup-$n.json"
    rm -rf "$run" "$work"/storm-"$setup"-"$n"-broker-*.log
}

for setup in $storm_setups; do
    case "$setup" in file | dynamodb) ;; *) echo "error: BENCH_STORM_SETUPS: unknown setup '$setup'" >&2; exit 2 ;; esac
    for n in $storm_ns; do
        storm_run "$setup" "$n"
    done
done
fi # the storm

# --- Lambda cold start in the local emulator: scripts/invoke-local.sh (`cargo lambda watch`
# as the Runtime API) starts the binary in Lambda mode, on DynamoDB = moto and SAKURA = a
# standalone simulator, both on loopback: plain HTTP, so no TLS handshake is in these numbers.
# Runs alternate between the connection warm-up on and off (OSB_WARM_UP), each a fresh process
# on a fresh table and a reset simulator; the first event is a provision (store and SAKURA
# calls), the second a poll. Times: process start -> init done (the script's clock, and the
# broker's own init_ms), the warm-up's calls, and each request's time inside the broker.
if runs coldstart; then
start_moto
cold_runs="${BENCH_COLD_RUNS:-10}"
port=$(free_port)
spawn cold-sim RUST_LOG=warn -- simulator --listen "127.0.0.1:$port"
cold_sim="http://127.0.0.1:$port"
wait_http "$cold_sim/_simulator/counters"
for i in $(seq 1 "$cold_runs"); do
    for warm in 1 0; do
        log "cold start $i of $cold_runs, warm-up $warm"
        table="osb-cold-$i-$warm-$$"
        env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
            OSB_TABLE="$table" DYNAMODB_ENDPOINT="$moto" "$bin" create-table >&2
        curl -s -X POST "$cold_sim/_simulator/reset" >/dev/null
        env OSB_BIN="$bin" OSB_TABLE="$table" DYNAMODB_ENDPOINT="$moto" AWS_ACCESS_KEY_ID=test \
            AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
            SAKURACLOUD_API_ROOT_URL="$cold_sim/cloud/zone" SAKURACLOUD_ACCESS_TOKEN=fake-token \
            SAKURACLOUD_ACCESS_TOKEN_SECRET=fake-secret OSB_WARM_UP="$warm" INVOKE_LOCAL_LOGS=1 \
            RUST_LOG=info,osb_sacloud::api::middleware=debug \
            scripts/invoke-local.sh events/provision.json events/last-operation.json \
            >"$work/cold-$warm-$i.txt" 2>&1 || { cat "$work/cold-$warm-$i.txt" >&2; exit 1; }
    done
done
python3 - "$work" "$cold_runs" <<'EOF'
"""Medians over the runs of each mode, from the script's cold-start line and the broker's log."""
import json, os, re, statistics, sys

work, runs = sys.argv[1], int(sys.argv[2])

def run(path):
    text = open(path).read()
    m = re.search(r"cold start: ready (\d+) ms after process start \(init_ms (\d+) in-process\), first response (\d+) ms", text)
    out = {"ready": int(m[1]), "init": int(m[2]), "first_back": int(m[3])}
    requests = []
    for line in text.splitlines():
        if not line.startswith('{"timestamp"'):
            continue
        f = json.loads(line)["fields"]
        if f.get("message") == "connections warmed up":
            out["warm_store"], out["warm_sakura"] = f["store_ms"], f.get("sakura_ms")
        elif f.get("message") == "store calls":
            requests.append(f)
    (put, poll) = requests[:2]
    assert put["method"] == "PUT" and poll["method"] == "GET", requests
    out.update(first=put["took_ms"], first_store=put["store_ms"], second=poll["took_ms"])
    return out

def med(rows, key):
    return statistics.median(r[key] for r in rows)

on = [run(os.path.join(work, f"cold-1-{i}.txt")) for i in range(1, runs + 1)]
off = [run(os.path.join(work, f"cold-0-{i}.txt")) for i in range(1, runs + 1)]
what = f"Lambda cold start, local emulator (cargo lambda watch; moto and simulator on loopback, plain HTTP: no TLS), median of {runs}"
rows = [
    (f"{what}: init", f"warm-up on: ready {med(on, 'ready'):.0f} ms after process start (init {med(on, 'init'):.0f} ms in-process, "
     f"of which the warm-up, both at once: GetItem {med(on, 'warm_store'):.0f} ms, SAKURA find {med(on, 'warm_sakura'):.0f} ms); "
     f"off: ready {med(off, 'ready'):.0f} ms (init {med(off, 'init'):.0f} ms)", ""),
    (f"{what}: first request (a provision)", f"warm-up on: {med(on, 'first'):.1f} ms in the broker (store {med(on, 'first_store'):.1f} ms); "
     f"off: {med(off, 'first'):.1f} ms (store {med(off, 'first_store'):.1f} ms); the poll after it: {med(on, 'second'):.1f} / {med(off, 'second'):.1f} ms; "
     f"process start → first response back through the emulator {med(on, 'first_back'):.0f} / {med(off, 'first_back'):.0f} ms", "first request after a cold start not paying for connections"),
]
json.dump({"note": "", "rows": rows}, open(os.path.join(work, "rows-cold.json"), "w"))
EOF
fi # the cold start

# --- The table.
python3 - "$machine" "$work" <<'EOF'
import glob, json, os, sys

machine, work = sys.argv[1:]
notes, rows = [], []
base = os.path.join(work, "rows-base.json")
if os.path.exists(base):
    part = json.load(open(base))
    notes.append(part["note"])
    rows += part["rows"]
storm = sorted(glob.glob(os.path.join(work, "storm-rows-*.json")), key=lambda p: (
    "dynamodb" in p, int(p.rsplit("-", 1)[1].split(".")[0])))
cold = os.path.join(work, "rows-cold.json")
for path in storm + ([cold] if os.path.exists(cold) else []):
    part = json.load(open(path))
    if part["note"] and part["note"] not in notes:
        notes.append(part["note"])
    rows += part["rows"]
print(f"{machine}. " + " ".join(notes) + "\n")
print("| measure | result | target / 2018 Go broker |")
print("|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
EOF
