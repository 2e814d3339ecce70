#!/usr/bin/env bash
# The package as a user installs it: the sdist and the wheel built from the checkout, the wheel
# installed into a clean virtual environment outside it (not editable), then a one-cell grid and
# its report run from that installation in an empty folder. CI runs it after the tests.
#   scripts/wheel-check.sh [PYTHON]      (PYTHON: one with 'build' installed; default python3)
set -euo pipefail
python=${1:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m build --sdist --wheel --outdir "$work/dist" "$root" >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/dist/*.whl
cd "$work"   # nothing of the checkout on the path: the installed package alone
"$work/venv/bin/drkd-bench" --version
"$work/venv/bin/drkd-bench" grid quick --set 'seeds=[0]' --set 'architectures=[mlp]' \
    --set 'methods=[ce]' --set train.epochs=2 --results "$work/results" --quiet
"$work/venv/bin/drkd-bench" report --results "$work/results" >/dev/null
test -s "$work/results/README.md" && test -s "$work/results/quick/README.md" && test -d "$work/results/quick/tables"
echo "wheel check: $(basename "$work"/dist/*.whl) installed outside the checkout, one cell and its report"
