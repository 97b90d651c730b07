#!/usr/bin/env bash
# Build the Lambda artifact: the broker for arm64 (Graviton, provided.al2023), zipped as
# `bootstrap`. Installs what it needs: the aarch64 Rust target (rustup) and cargo-lambda with zig
# (PyPI, in ./.venv-lambda). Prints the zip's path and size.
#
#   scripts/build.sh            # -> target/lambda/osb-sacloud/bootstrap.zip
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/cargo-lambda-env.sh
source scripts/cargo-lambda-env.sh

if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
else
    echo "warning: no rustup; assuming the aarch64-unknown-linux-gnu target is installed" >&2
fi

lambda_dir="${LAMBDA_DIR:-${CARGO_TARGET_DIR:-target}/lambda}"
# Without default features: the simulator (fake mode) has no place in a deployed function.
cargo lambda build --release --arm64 --no-default-features --output-format zip --bin osb-sacloud \
    --lambda-dir "$lambda_dir"

zip="$lambda_dir/osb-sacloud/bootstrap.zip"
[ -f "$zip" ] || { echo "error: $zip was not produced" >&2; exit 1; }
bytes=$(stat -c %s "$zip")
unzipped=$(unzip -l "$zip" | awk 'END { print $1 }')
printf 'built %s: %s bytes zipped (%.1f MiB), %s bytes unzipped\n' "$zip" "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$unzipped"
