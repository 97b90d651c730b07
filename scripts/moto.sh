#!/bin/sh
# Start or stop a local DynamoDB emulator (moto_server) on 127.0.0.1.
#
#   scripts/moto.sh start [PORT]   start in the background (default port 5005), wait until ready,
#                                  print the DYNAMODB_ENDPOINT to use
#   scripts/moto.sh stop [PORT]    stop the server started for PORT, by its recorded PID
#
# The PID and the server's log live in ${MOTO_STATE_DIR:-${TMPDIR:-/tmp}}/osb-sacloud-moto-PORT.{pid,log}.
# moto keeps everything in memory: stopping it drops all tables. Create the broker's table with
# `osb-sacloud create-table` after starting it.
#
# scripts/moto/sitecustomize.py is put on PYTHONPATH so that moto handles one request at a time:
# otherwise two racing conditional writes can both succeed there, which DynamoDB never allows.
set -eu

usage() {
    echo "usage: $0 start|stop [PORT]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
action=$1
port=${2:-5005}
case $port in
'' | *[!0-9]*) echo "moto.sh: port must be a number, got '$port'" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
state_dir=${MOTO_STATE_DIR:-${TMPDIR:-/tmp}}
pid_file=$state_dir/osb-sacloud-moto-$port.pid
log_file=$state_dir/osb-sacloud-moto-$port.log
endpoint=http://127.0.0.1:$port

ready() {
    curl -fsS -o /dev/null --max-time 2 "$endpoint/moto-api/" 2>/dev/null
}

running_pid() {
    [ -f "$pid_file" ] || return 1
    pid=$(cat "$pid_file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
    if pid=$(running_pid); then
        echo "moto_server already running (pid $pid); DYNAMODB_ENDPOINT=$endpoint"
        return 0
    fi
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "moto.sh: moto_server not found; install it with: pip install 'moto[server]'" >&2
        exit 1
    fi
    if ready; then
        echo "moto.sh: something already answers on $endpoint; pick another port" >&2
        exit 1
    fi
    mkdir -p "$state_dir"
    PYTHONPATH="$here/moto${PYTHONPATH:+:$PYTHONPATH}" \
        AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} \
        AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test} \
        AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} \
        nohup moto_server -H 127.0.0.1 -p "$port" </dev/null >"$log_file" 2>&1 &
    pid=$!
    echo "$pid" >"$pid_file"
    tries=0
    until ready; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pid_file"
            echo "moto.sh: moto_server exited; its log ($log_file):" >&2
            tail -n 20 "$log_file" >&2
            exit 1
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 300 ]; then
            kill "$pid" 2>/dev/null || true
            rm -f "$pid_file"
            echo "moto.sh: moto_server not ready after 30 s; log: $log_file" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "moto_server running (pid $pid); DYNAMODB_ENDPOINT=$endpoint"
}

stop() {
    if ! pid=$(running_pid); then
        rm -f "$pid_file"
        echo "moto_server for port $port is not running"
        return 0
    fi
    kill "$pid"
    tries=0
    while kill -0 "$pid" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ]; then
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$pid_file"
    echo "moto_server (pid $pid) stopped"
}

case $action in
start) start ;;
stop) stop ;;
*) usage ;;
esac
