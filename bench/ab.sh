#!/usr/bin/env bash
# Interleaved A/B runs of one benchmark scenario: a git ref against the
# working tree, built side by side and run alternately, so that a host whose
# speed drifts by 20-40% within an hour (docs/performance.md, rounds 4 and 8)
# moves both builds alike.
#
#   bench/ab.sh <scenario> <pairs> <ref> [extra args for run.js]
#   bench/ab.sh actor-stage 3 HEAD~1
#
# Each build goes to .tmp/ab/<A|B>/dist (with a copy of package.json, which
# run.js reads); node_modules resolves from the checkout. Results land in
# .tmp/ab/<A|B>/bench/results/ (each run's table also as run-<i>.md), never
# in bench/results/. Prints each run's
# targeted metrics (the lines of its results table that carry a target).
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
scenario=$1 pairs=$2 ref=$3
shift 3
root=$(git rev-parse --show-toplevel)
out=$root/.tmp/ab
rm -rf "$out" && mkdir -p "$out/A" "$out/B"

# A: the ref, from a throwaway worktree (prune: an earlier run killed before its trap left one registered).
git -C "$root" worktree prune
git -C "$root" worktree add --detach --force "$out/src" "$ref" >/dev/null
trap 'git -C "$root" worktree remove --force "$out/src" >/dev/null 2>&1 || true' EXIT
ln -s "$root/node_modules" "$out/src/node_modules"
(cd "$out/src" && npx tsc -p tsconfig.build.json --outDir "$out/A/dist")
cp "$out/src/package.json" "$out/A/"
# B: the working tree.
(cd "$root" && npx tsc -p tsconfig.build.json --outDir "$out/B/dist")
cp "$root/package.json" "$out/B/"

# run.js names a run against a ClickHouse server's results <scenario>-server.md.
result=$scenario
for a in "$@"; do [ "$a" = --server ] && result=$scenario-server; done

for i in $(seq 1 "$pairs"); do
  for side in A B; do
    node --expose-gc --enable-source-maps "$out/$side/dist/bench/run.js" "$scenario" "$@" >"$out/$side/run-$i.log" 2>&1 || true
    # Each run overwrites the results: keep this one's table beside its log.
    cp "$out/$side/bench/results/$result.md" "$out/$side/run-$i.md" 2>/dev/null || true
    echo "pair $i $side ($([ $side = A ] && echo "$ref" || echo 'working tree')):"
    grep -E '^\| .* \| (met|\*\*missed\*\*) \|' "$out/$side/bench/results/$result.md" | cut -d'|' -f2,3 | sed 's/^/  /' || echo "  (no result: see $out/$side/run-$i.log)"
  done
done
