#!/usr/bin/env bash
# Refresh requirements-lock.txt to the newest releases that requirements-dev.txt allows, then run the suite on them.
#
#   bash scripts/refresh_lock.sh            # writes requirements-lock.txt, runs pytest in the fresh venv
#   bash scripts/refresh_lock.sh --no-test  # only the lock
#
# The lock is a pip freeze of a fresh venv that installed requirements-dev.txt from scratch (Python 3.11, the CPU
# torch file pip finds on CI machines), so it pins every package of the tree. CI (.ci/run) installs exactly this
# lock; requirements.txt keeps ranges for users. Commit the new lock only when the suite passes on it.
set -euo pipefail
cd "$(dirname "$0")/.."
run_tests=1
[ "${1:-}" = "--no-test" ] && run_tests=0
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --no-cache-dir -r requirements-dev.txt
"$venv/bin/pip" check
{
  echo "# Exact lock of the whole dependency tree for CI (Python 3.11, CPU torch), made from requirements-dev.txt by"
  echo "# bash scripts/refresh_lock.sh on $(date -u +%Y-%m-%d). Do not edit by hand; users install requirements.txt."
  "$venv/bin/pip" freeze --all --exclude pip --exclude setuptools --exclude wheel
} > requirements-lock.txt.new
mv requirements-lock.txt.new requirements-lock.txt
echo "wrote requirements-lock.txt ($(grep -vc '^#' requirements-lock.txt) packages)"
if [ "$run_tests" = 1 ]; then
  "$venv/bin/python" -m pytest -q
fi
