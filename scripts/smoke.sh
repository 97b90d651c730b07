#!/usr/bin/env bash
# Walk the OSB lifecycle against a running broker and print each status:
# catalog, provision, poll, bind, GET binding, unbind, deprovision, poll, repeated DELETE (410).
#
#   OSB_USERNAME=... OSB_PASSWORD=... scripts/smoke.sh https://xxxx.lambda-url.REGION.on.aws
#
# Works against the deployed Function URL, a local server (`SAKURACLOUD_FAKE_MODE=1 cargo run`)
# or anything else that speaks OSB. Against real SAKURA Cloud this creates (and deletes) a real
# database appliance: set SMOKE_PARAMETERS to parameters valid in your account, or
# SMOKE_CATALOG_ONLY=1 to only read the catalog.
#
# Environment: OSB_USERNAME, OSB_PASSWORD (required); SMOKE_SERVICE_ID, SMOKE_PLAN_ID (default:
# sacloud-mariadb db-10g); SMOKE_PARAMETERS (JSON; default: the simulator's sample switch);
# SMOKE_BIND_PARAMETERS (JSON, e.g. {"mode":"shared"}; default: none, the broker's default mode);
# SMOKE_POLL_SECS (default 5), SMOKE_TIMEOUT_SECS (default 2400); SMOKE_API_VERSION (2.17).
set -euo pipefail

url="${1:-}"
if [ -z "$url" ]; then
    echo "usage: OSB_USERNAME=... OSB_PASSWORD=... $0 BROKER_URL" >&2
    exit 2
fi
url="${url%/}"
: "${OSB_USERNAME:?set OSB_USERNAME to the broker username}"
: "${OSB_PASSWORD:?set OSB_PASSWORD to the broker password}"
service="${SMOKE_SERVICE_ID:-c4f353f3-8a59-437d-b4af-6a6f856248db}"
plan="${SMOKE_PLAN_ID:-7320351e-4664-4df5-938c-c0bfe8551609}"
sample_parameters='{"switchID":"112233445566","ipaddress":"192.168.0.11","maskLen":24,"defaultRoute":"192.168.0.1"}'
parameters="${SMOKE_PARAMETERS:-$sample_parameters}"
poll_secs="${SMOKE_POLL_SECS:-5}"
timeout_secs="${SMOKE_TIMEOUT_SECS:-2400}"
suffix="$(date +%s)-$$"
instance="smoke-$suffix"
binding="smoke-binding-$suffix"
ids="service_id=$service&plan_id=$plan"

body="$(mktemp)"
netrc="$(mktemp)"
trap 'rm -f "$body" "$netrc"' EXIT
# Credentials through a netrc file, so they appear in no process list.
host="$(printf '%s' "$url" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')"
printf 'machine %s login %s password %s\n' "$host" "$OSB_USERNAME" "$OSB_PASSWORD" >"$netrc"

# call NAME EXPECTED METHOD PATH [JSON]: print "NAME METHOD PATH -> STATUS", fail unless EXPECTED.
status=""
call() {
    local name="$1" expected="$2" method="$3" path="$4" data="${5:-}"
    local args=(-sS -o "$body" -w '%{http_code}' --netrc-file "$netrc" -X "$method"
        -H "X-Broker-API-Version: ${SMOKE_API_VERSION:-2.17}" -H "X-Broker-API-Request-Identity: smoke-$suffix-$name")
    [ -z "$data" ] || args+=(-H 'Content-Type: application/json' --data "$data")
    status="$(curl "${args[@]}" "$url$path")" || { echo "$name: request failed" >&2; exit 1; }
    printf '%-14s %-6s %s -> %s\n' "$name" "$method" "$path" "$status"
    if [ "$status" != "$expected" ]; then
        echo "$name: expected $expected, got $status: $(cat "$body")" >&2
        exit 1
    fi
}

# poll NAME: GET last_operation until the state leaves "in progress"; fail unless "succeeded".
poll() {
    local name="$1" waited=0 state
    while :; do
        call "$name" 200 GET "/v2/service_instances/$instance/last_operation"
        state="$(sed -nE 's/.*"state" *: *"([^"]*)".*/\1/p' "$body")"
        [ "$state" = "in progress" ] || break
        if [ "$(awk -v w="$waited" -v t="$timeout_secs" 'BEGIN { print (w >= t) }')" = 1 ]; then
            echo "$name: still in progress after ${timeout_secs}s" >&2
            exit 1
        fi
        sleep "$poll_secs"
        waited="$(awk -v w="$waited" -v p="$poll_secs" 'BEGIN { print w + p }')"
    done
    echo "$name: $state"
    [ "$state" = "succeeded" ] || { echo "$name: operation $state: $(cat "$body")" >&2; exit 1; }
}

call catalog 200 GET /v2/catalog
grep -q '"services"' "$body" || { echo "catalog: no services in $(cat "$body")" >&2; exit 1; }
if [ "${SMOKE_CATALOG_ONLY:-0}" = 1 ]; then
    echo "smoke: catalog only, OK"
    exit 0
fi

call provision 202 PUT "/v2/service_instances/$instance?accepts_incomplete=true" \
    "{\"service_id\":\"$service\",\"plan_id\":\"$plan\",\"organization_guid\":\"smoke\",\"space_guid\":\"smoke\",\"context\":{\"platform\":\"smoke\"},\"parameters\":$parameters}"
poll provisioned
bind_parameters=""
[ -z "${SMOKE_BIND_PARAMETERS:-}" ] || bind_parameters=",\"parameters\":$SMOKE_BIND_PARAMETERS"
call bind 201 PUT "/v2/service_instances/$instance/service_bindings/$binding" \
    "{\"service_id\":\"$service\",\"plan_id\":\"$plan\",\"bind_resource\":{\"app_guid\":\"smoke\"}$bind_parameters}"
grep -q '"credentials"' "$body" || { echo "bind: no credentials" >&2; exit 1; }
call get-binding 200 GET "/v2/service_instances/$instance/service_bindings/$binding"
call unbind 200 DELETE "/v2/service_instances/$instance/service_bindings/$binding?$ids"
call deprovision 202 DELETE "/v2/service_instances/$instance?accepts_incomplete=true&$ids"
poll deprovisioned
call re-delete 410 DELETE "/v2/service_instances/$instance?accepts_incomplete=true&$ids"
echo "smoke: lifecycle OK against $url"
