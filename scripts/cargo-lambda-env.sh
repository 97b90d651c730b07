#!/usr/bin/env bash
# Sourced (not run) by the Lambda scripts: makes `cargo lambda` available from a project-local virtualenv
# (./.venv-lambda, git-ignored), installing cargo-lambda and ziglang from PyPI the first time.
# `cargo install cargo-lambda` would compile some 680 crates; the PyPI wheels take seconds.

_venv="${CARGO_LAMBDA_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-lambda}"
if ! [ -x "$_venv/bin/cargo-lambda" ] || ! "$_venv/bin/python" -c 'import ziglang' >/dev/null 2>&1; then
    echo "installing cargo-lambda and ziglang into $_venv" >&2
    python3 -m venv "$_venv" || { echo "error: python3 -m venv failed (install python3-venv)" >&2; return 1; }
    "$_venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda>=1.8' ziglang \
        || { echo "error: could not install cargo-lambda from PyPI" >&2; return 1; }
fi
# cargo finds `cargo-lambda` on PATH; cargo-lambda finds zig through the ziglang package.
export PATH="$_venv/bin:$PATH"
unset _venv
