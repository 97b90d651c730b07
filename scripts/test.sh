#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test tools it needs, checks that the real
# MariaDB and PostgreSQL servers answer (failing loudly if not), starts the DynamoDB emulator,
# then runs formatting, lint and every test with `--features services`, failing if any test is
# reported ignored (a bare `cargo test` ignores those that need these servers).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

log "test tools"
if ! command -v moto_server >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.0'
fi

log "database servers (MariaDB 127.0.0.1:3306, PostgreSQL 127.0.0.1:5432)"
scripts/check-databases.sh

log "DynamoDB emulator"
if [ -z "${DYNAMODB_ENDPOINT:-}" ]; then
    MOTO_PORT="${MOTO_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
    scripts/moto.sh start "$MOTO_PORT"
    trap 'scripts/moto.sh stop "$MOTO_PORT"' EXIT
    export DYNAMODB_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
fi
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" AWS_REGION="${AWS_REGION:-us-east-1}"
export SIMULATOR_MARIADB_URL="${SIMULATOR_MARIADB_URL:-mysql://root@127.0.0.1:3306/}"
export SIMULATOR_POSTGRES_URL="${SIMULATOR_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

log "template.yaml (cfn-lint, sam validate --lint)"
command -v cfn-lint >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check cfn-lint
cfn-lint template.yaml
# shellcheck source=scripts/sam-env.sh
source scripts/sam-env.sh
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" SAM_CLI_TELEMETRY=0 "${sam[@]}" validate --lint --template template.yaml

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --features services"
cargo clippy --all-targets --locked --features services -- -D warnings
log "cargo clippy --no-default-features (the Lambda build, without the simulator)"
cargo clippy --all-targets --locked --no-default-features -- -D warnings

log "cargo test --features services (the tests a bare cargo test leaves ignored run too)"
mkdir -p target
results=target/test-results.txt
cargo test --locked --features services -- --test-threads="${TEST_THREADS:-4}" 2>&1 | tee "$results"
# With every service up nothing may be skipped: a test still ignored here would hide a gap.
if grep -Eq '^test result: .* [1-9][0-9]* ignored;' "$results"; then
    echo "scripts/test.sh: tests were ignored under --features services:" >&2
    grep -E '^test .* \.\.\. ignored' "$results" >&2 || true
    exit 1
fi
