#!/usr/bin/env bash
# Run the broker in Lambda mode on this machine, without Docker, and invoke it with events.
#
#   scripts/invoke-local.sh events/catalog.json [events/provision.json ...]
#
# `cargo lambda watch --only-lambda-apis` emulates the Lambda Runtime API; the broker binary
# (OSB_BIN, or a debug build made here) is started against it exactly as Lambda would start it,
# and each event is sent with `cargo lambda invoke --data-file`. The events run in order against
# one warm process. Prints each response and the cold-start times:
#   ready: process start -> the broker polls the Runtime API (init done)
#   first response: process start -> the first event's response is back
#
# By default the broker runs in fake mode (in-process SAKURA Cloud simulator) on a memory store
# with the sample credentials the events carry; set OSB_TABLE and DYNAMODB_ENDPOINT for a
# DynamoDB emulator, and OSB_USERNAME / OSB_PASSWORD / SAKURACLOUD_* as for the local server.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
    echo "usage: $0 EVENT_FILE [EVENT_FILE...]" >&2
    exit 2
fi
for event in "$@"; do
    [ -f "$event" ] || { echo "error: no such event file: $event" >&2; exit 2; }
done

# shellcheck source=scripts/cargo-lambda-env.sh
source scripts/cargo-lambda-env.sh

bin="${OSB_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --quiet --bin osb-sacloud
    bin="${CARGO_TARGET_DIR:-target}/debug/osb-sacloud"
fi
[ -x "$bin" ] || { echo "error: broker binary not found: $bin" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
now_ms() { date +%s%3N; }

port="${INVOKE_PORT:-$(free_port)}"
work="$(mktemp -d)"
pids=()
# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$port" >"$work/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
    listening "$port" && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/watch.log" >&2; echo "error: cargo lambda watch exited" >&2; exit 1; }
    sleep 0.05
done
listening "$port" || { cat "$work/watch.log" >&2; echo "error: cargo lambda watch did not listen on $port" >&2; exit 1; }

# What the Lambda service sets; AWS_LAMBDA_FUNCTION_NAME `_` is the name `cargo lambda invoke` uses.
export AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt"
export AWS_LAMBDA_FUNCTION_NAME=_
export AWS_LAMBDA_FUNCTION_MEMORY_SIZE="${AWS_LAMBDA_FUNCTION_MEMORY_SIZE:-256}"
# shellcheck disable=SC2016 # the literal version name
export AWS_LAMBDA_FUNCTION_VERSION='$LATEST'
export AWS_REGION="${AWS_REGION:-us-east-1}"
if [ -z "${SAKURACLOUD_ACCESS_TOKEN:-}" ]; then
    export SAKURACLOUD_FAKE_MODE="${SAKURACLOUD_FAKE_MODE:-1}"
fi
# The sample credentials in events/ (documented in docs/deploy.md, "Try the Lambda locally"); not for real brokers.
export OSB_USERNAME="${OSB_USERNAME:-sample-broker}"
export OSB_PASSWORD="${OSB_PASSWORD:-sample-password-not-a-secret}"
# As deployed by template.yaml; dedicated would dial the simulated appliance's address.
export OSB_BINDING_MODE="${OSB_BINDING_MODE:-shared}"
export RUST_LOG="${RUST_LOG:-info}"

start=$(now_ms)
"$bin" 2>"$work/broker.log" &
pids+=($!)
broker=$!
ready=""
for _ in $(seq 1 600); do
    if grep -q 'cold start done' "$work/broker.log"; then ready=$(now_ms); break; fi
    kill -0 "$broker" 2>/dev/null || { cat "$work/broker.log" >&2; echo "error: the broker exited during init" >&2; exit 1; }
    sleep 0.01
done
[ -n "$ready" ] || { cat "$work/broker.log" >&2; echo "error: the broker did not finish init" >&2; exit 1; }

first=""
status=0
for event in "$@"; do
    echo "== $event"
    if ! cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" --data-file "$event" --output-format json; then
        status=1
        echo "error: invoke failed for $event" >&2
    fi
    echo
    [ -n "$first" ] || first=$(now_ms)
done

init_ms=$(grep -o '"init_ms":[0-9]*' "$work/broker.log" | head -n 1 | cut -d: -f2)
echo "cold start: ready $((ready - start)) ms after process start (init_ms ${init_ms:-?} in-process), first response $((first - start)) ms"
if [ "${INVOKE_LOCAL_LOGS:-0}" = 1 ] || [ $status -ne 0 ]; then
    echo "== broker log" >&2
    cat "$work/broker.log" >&2
fi
exit $status
