#!/usr/bin/env bash
# Chaos run: a standalone SAKURA simulator that answers 503/423 at random and gets ambiguous
# creates, and a broker on the embedded file store (or DynamoDB on moto) that is killed with
# SIGKILL at random moments and restarted on the same state, while N instances are provisioned
# and deprovisioned through the OSB API with curl.
#
#   scripts/chaos.sh [N]                        # N instances, default 30, file store
#   CHAOS_STORE=dynamodb scripts/chaos.sh [N]   # the same on DynamoDB (moto, scripts/moto.sh)
#
# It passes when every instance was provisioned (last_operation succeeded), deprovisioned
# (last_operation succeeded) and a further DELETE answers 410; the simulator holds no appliance;
# "appliances created" == "appliances deleted" == N (no duplicate, no orphan); and no answer of
# the broker was a 5xx.
#
# Environment: CHAOS_PROFILE (release | debug, default release), CHAOS_KILL_MIN_MS /
# CHAOS_KILL_MAX_MS (time between kills, 200 / 1500), CHAOS_DOWN_MAX_MS (longest time the broker
# stays dead, 300), CHAOS_FAULTS (simulator faults JSON; every SAKURA call also waits 20 ms so
# that kills land while calls are in flight), CHAOS_SEED, CARGO_TARGET_DIR, CHAOS_NO_BUILD=1,
# CHAOS_KEEP=1 (keep the logs and data directory), CHAOS_STORE (file | dynamodb).
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-30}"
profile="${CHAOS_PROFILE:-release}"
kill_min="${CHAOS_KILL_MIN_MS:-200}"
kill_max="${CHAOS_KILL_MAX_MS:-1500}"
down_max="${CHAOS_DOWN_MAX_MS:-300}"
default_faults='{"routes":{"*":{"rate_503":0.2,"rate_423":0.05,"latency_ms":20}},"ambiguous_creates":2}'
faults="${CHAOS_FAULTS:-$default_faults}"
seed="${CHAOS_SEED:-$RANDOM}"
target="${CARGO_TARGET_DIR:-target}"
bin="$target/$profile/osb-sacloud"
store="${CHAOS_STORE:-file}"
case $store in
file | dynamodb) ;;
*) echo "error: CHAOS_STORE must be file or dynamodb, got '$store'" >&2; exit 2 ;;
esac
RANDOM=$seed

log() { printf '== %s\n' "$*" >&2; }

if [ "${CHAOS_NO_BUILD:-}" != 1 ]; then
    flag=()
    [ "$profile" = debug ] || flag=(--profile "$profile")
    cargo build --locked "${flag[@]}" --bin osb-sacloud >&2
fi
[ -x "$bin" ] || { echo "error: $bin is missing" >&2; exit 1; }

work="$(mktemp -d)"
sim_pid=""
broker_pid=""
moto_port=""
cleanup() {
    [ -z "$broker_pid" ] || kill -9 "$broker_pid" 2>/dev/null || true
    [ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true
    [ -z "$moto_port" ] || MOTO_STATE_DIR="$work" scripts/moto.sh stop "$moto_port" >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    if [ "${CHAOS_KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
broker_port=$(free_port)
sim="http://127.0.0.1:$sim_port"
broker="http://127.0.0.1:$broker_port"
user=chaos
pass=chaos-password-0123456789
mariadb=c4f353f3-8a59-437d-b4af-6a6f856248db
mariadb_10g=7320351e-4664-4df5-938c-c0bfe8551609
body='{"service_id":"'$mariadb'","plan_id":"'$mariadb_10g'","organization_guid":"chaos","space_guid":"chaos","context":{"platform":"kubernetes","namespace":"chaos"},"parameters":{"switchID":"112233445566","ipaddress":"192.168.0.11","maskLen":24,"defaultRoute":"192.168.0.1"}}'
query="service_id=$mariadb&plan_id=$mariadb_10g"

log "simulator on $sim (seed $seed, faults $faults)"
SIMULATOR_MIGRATING_MS="${CHAOS_MIGRATING_MS:-1500}" SIMULATOR_BOOT_MS="${CHAOS_BOOT_MS:-800}" \
    SIMULATOR_CLEANING_MS="${CHAOS_CLEANING_MS:-500}" SIMULATOR_FAULTS="$faults" SIMULATOR_SEED="$seed" \
    RUST_LOG=warn "$bin" simulator --listen "127.0.0.1:$sim_port" >"$work/simulator.log" 2>&1 &
sim_pid=$!

store_env=(OSB_DATA_DIR="$work/data")
if [ "$store" = dynamodb ]; then
    moto_port=$(free_port)
    MOTO_STATE_DIR="$work" scripts/moto.sh start "$moto_port" >&2
    endpoint="http://127.0.0.1:$moto_port"
    store_env=(OSB_TABLE=osb-chaos DYNAMODB_ENDPOINT="$endpoint" AWS_REGION=us-east-1
        AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)
    env "${store_env[@]}" "$bin" create-table >&2
fi
log "broker on the $store store"

start_broker() {
    env "${store_env[@]}" OSB_USERNAME=$user OSB_PASSWORD=$pass OSB_LISTEN="127.0.0.1:$broker_port" \
        SAKURACLOUD_API_ROOT_URL="$sim/cloud/zone" SAKURACLOUD_ACCESS_TOKEN=fake-token \
        SAKURACLOUD_ACCESS_TOKEN_SECRET=fake-secret OSB_BINDING_MODE=shared OSB_CLAIM_LEASE_SECS=2 \
        OSB_POWER_RESEND_SECS=1 OSB_REAPPLY_SECS=1 OSB_CREATE_RETRY_SECS=0.5 OSB_CREATE_ATTEMPTS=20 \
        SAKURACLOUD_RATE_LIMIT=100 SAKURACLOUD_RETRY_WAIT_MIN=0.05 OSB_RETRY_AFTER_SECS=1 RUST_LOG=info \
        "$bin" serve >>"$work/broker.log" 2>&1 &
    broker_pid=$!
}
start_broker

for _ in $(seq 1 200); do
    curl -s -o /dev/null "$sim/_simulator/counters" && curl -s -o /dev/null "$broker/healthz" && break
    sleep 0.05
done

# request METHOD PATH [BODY]: prints "STATUS BODY"; STATUS is 000 when the broker was not there.
request() {
    local args=(-s -o - -w ' %{http_code}' --max-time 30 -X "$1" -u "$user:$pass" -H 'X-Broker-API-Version: 2.17')
    [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
    local out
    out=$(curl "${args[@]}" "$broker$2" 2>/dev/null) || true
    printf '%s %s\n' "${out##* }" "${out% *}"
}

# One instance's whole life; writes "id provision deprovision final-delete unreachable 5xx".
lifecycle() {
    local id=$1 status out final_state unreachable=0 server_errors=0 provision=none deprovision=none final=none
    note() { case $1 in 000) unreachable=$((unreachable + 1)) ;; 5*) server_errors=$((server_errors + 1)) ;; esac; }
    until_status() { # WANTED... -- METHOD PATH [BODY]
        local wanted=()
        while [ "$1" != -- ]; do wanted+=("$1"); shift; done
        shift
        for _ in $(seq 1 600); do
            out=$(request "$@")
            status=${out%% *}
            note "$status"
            for w in "${wanted[@]}"; do [ "$status" = "$w" ] && return 0; done
            sleep 0.2
        done
        return 1
    }
    poll() { # leaves the final state in $final_state (not echoed: the counters live in this shell)
        local state
        final_state=timeout
        for _ in $(seq 1 1500); do
            out=$(request GET "/v2/service_instances/$id/last_operation")
            status=${out%% *}
            note "$status"
            state=$(printf '%s' "$out" | sed -n 's/.*"state":"\([^"]*\)".*/\1/p')
            if [ "$status" = 200 ] && [ "$state" != "in progress" ]; then
                final_state=$state
                return
            fi
            sleep 0.2
        done
    }
    if until_status 202 201 200 -- PUT "/v2/service_instances/$id?accepts_incomplete=true" "$body"; then
        poll
        provision=$final_state
    fi
    if until_status 202 200 410 -- DELETE "/v2/service_instances/$id?accepts_incomplete=true&$query"; then
        poll
        deprovision=$final_state
    fi
    if until_status 410 200 202 -- DELETE "/v2/service_instances/$id?accepts_incomplete=true&$query"; then
        final=$status
    fi
    echo "$id $provision $deprovision $final $unreachable $server_errors" >"$work/result-$id"
}

log "$n lifecycles on $broker, SIGKILL every ${kill_min}-${kill_max} ms"
workers=()
for i in $(seq 1 "$n"); do
    lifecycle "chaos-$i" &
    workers+=($!)
done

kills=0
running() { for w in "${workers[@]}"; do kill -0 "$w" 2>/dev/null && return 0; done; return 1; }
while running; do
    sleep "$(awk -v a="$kill_min" -v b="$kill_max" -v r="$RANDOM" 'BEGIN { printf "%.3f", (a + (b - a) * r / 32767) / 1000 }')"
    running || break
    kill -9 "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    kills=$((kills + 1))
    sleep "$(awk -v b="$down_max" -v r="$RANDOM" 'BEGIN { printf "%.3f", b * r / 32767 / 1000 }')"
    start_broker
done
for w in "${workers[@]}"; do wait "$w" || true; done

counters=$(curl -s "$sim/_simulator/counters")
appliances=$(curl -s "$sim/_simulator/appliances")
read -r created deleted calls remaining < <(python3 -c '
import json, sys
c, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(c.get("appliances created", 0), c.get("appliances deleted", 0),
      sum(v for k, v in c.items() if not k.startswith("appliances ")), len(a))' "$counters" "$appliances")
cat "$work"/result-* >"$work/results"
adopted=$(grep -c 'adopting existing appliance' "$work/broker.log" || true)
read -r provisioned deprovisioned gone unreachable server_errors < <(awk '
    { p += ($2 == "succeeded"); d += ($3 == "succeeded"); g += ($4 == "410"); u += $5; e += $6 }
    END { print p + 0, d + 0, g + 0, u + 0, e + 0 }' "$work/results")

cat <<EOF
| chaos run | count |
|---|---|
| store | $store |
| instances | $n |
| broker kills (SIGKILL) and restarts | $kills |
| provision ended succeeded | $provisioned |
| deprovision ended succeeded | $deprovisioned |
| further DELETE answered 410 | $gone |
| requests that found no broker (killed) | $unreachable |
| 5xx answers from the broker | $server_errors |
| appliances adopted after a lost create answer (broker log) | $adopted |
| SAKURA API calls (faults included) | $calls |
| appliances created | $created |
| appliances deleted | $deleted |
| appliances left on the simulator | $remaining |
EOF

ok=1
[ "$provisioned" = "$n" ] && [ "$deprovisioned" = "$n" ] && [ "$gone" = "$n" ] || ok=0
[ "$created" = "$n" ] && [ "$deleted" = "$n" ] && [ "$remaining" = 0 ] && [ "$server_errors" = 0 ] || ok=0
if [ $ok = 1 ]; then
    echo "chaos: PASS (seed $seed)"
else
    echo "chaos: FAIL (seed $seed); results:" >&2
    grep -v ' succeeded succeeded 410 ' "$work/results" >&2 || true
    CHAOS_KEEP=1
    exit 1
fi
