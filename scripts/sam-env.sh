#!/usr/bin/env bash
# Sourced (not run) by deploy.sh and test.sh: the SAM CLI at one pinned version (SAM_CLI_VERSION)
# in a project-local virtualenv (SAM_VENV, default ./.venv-sam, git-ignored), installed from PyPI
# the first time and again whenever the version there is not the pinned one. A `sam` elsewhere on
# PATH (CI runners have one) is never used. Sets `sam` and `sam_python` (arrays).

SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
_sam_venv="${SAM_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-sam}"
if [ "$("$_sam_venv/bin/sam" --version 2>/dev/null)" != "SAM CLI, version $SAM_CLI_VERSION" ]; then
    echo "installing aws-sam-cli $SAM_CLI_VERSION into $_sam_venv" >&2
    { python3 -m venv "$_sam_venv" \
        && "$_sam_venv/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"; } \
        || { echo "error: could not install aws-sam-cli $SAM_CLI_VERSION from PyPI" >&2; return 1; }
fi
# shellcheck disable=SC2034 # used by the scripts that source this one
sam=("$_sam_venv/bin/sam")
# shellcheck disable=SC2034
sam_python=("$_sam_venv/bin/python")
unset _sam_venv
