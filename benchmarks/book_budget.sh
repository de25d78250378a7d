#!/usr/bin/env bash
# Time `make book` from a fresh clone on the embedded default, cold (new venv, no pip cache, empty data and
# checkpoint cache), then a second time with nothing changed. Usage: benchmarks/book_budget.sh [WORKDIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/medbench-budget.XXXX)}
rm -rf "$work/clone" "$work/cache" && mkdir -p "$work"
git clone -q "$src" "$work/clone"
cd "$work/clone"
export MEDBENCH_CACHE="$work/cache"
for run in 1 2; do
  start=$(date +%s)
  PIP_NO_CACHE_DIR=1 /usr/bin/time -f "peak RSS %M KB" make book > "$work/book$run.log" 2>&1
  echo "make book #$run: $(( $(date +%s) - start )) s ($(tail -1 "$work/book$run.log"))"
done
grep -E "executed|built the book|pre-trained" "$work/book1.log" | sed 's/^/  /'
echo "logs in $work"
