#!/usr/bin/env bash
# Hostile-input run: the property-based suites on every route's inputs (ids and path tricks,
# query strings, headers, bodies over the limit, deeply nested or not UTF-8, random request
# sequences, also on appliances backed by the real MariaDB and PostgreSQL), the fixed hostile
# cases, and the log capture that searches a full lifecycle's TRACE-level logs for every secret.
# Each suite asserts a 4xx with a JSON body or a success, never a 5xx or a panic, and that the
# catalog still answers afterwards. CI runs the same tests at scale 1 (in scripts/test.sh).
#
#   scripts/hostile.sh [SCALE]      # SCALE times the CI case counts, default 4
#
# Needs MariaDB on 127.0.0.1:3306 and PostgreSQL on 127.0.0.1:5432 (scripts/check-databases.sh).
# Prints what each suite ran and the test verdict.
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${1:-4}"
case $scale in
'' | *[!0-9]* | 0) echo "error: SCALE must be a positive number, got '$scale'" >&2; exit 2 ;;
esac

scripts/check-databases.sh >&2
export SIMULATOR_MARIADB_URL="${SIMULATOR_MARIADB_URL:-mysql://root@127.0.0.1:3306/}"
export SIMULATOR_POSTGRES_URL="${SIMULATOR_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
started=$(date +%s)
status=0
HOSTILE_SCALE="$scale" cargo test --locked --test it -- hostile:: logs:: --nocapture --test-threads=2 \
    >"$out" 2>&1 || status=$?
took=$(($(date +%s) - started))

echo "hostile-input run, scale $scale (CI case counts x $scale), $(date -u +%Y-%m-%d), ${took} s"
echo
grep -E '^(hostile |searched )' "$out" | sed 's/^/    /' || true
echo
grep -E '^test result:' "$out" | tail -n 1
if [ "$status" != 0 ]; then
    echo "hostile: FAIL; the failing tests:" >&2
    grep -E '^test .* FAILED$|panicked at' "$out" >&2 || tail -n 40 "$out" >&2
    exit "$status"
fi
