#!/usr/bin/env bash
# The wall time of `make bench` (both tasks, default agents, one torch thread) for two commits, one after
# the other on this machine, and their ratio: docs/results/bench-wall-time.md.
#   bash docs/results/scripts/bench_wall_time.sh BASE_COMMIT [NEW_COMMIT]   (NEW defaults to the working tree)
# Run it alone on the machine (about half an hour on 2 cores). Each commit's code runs from its own
# worktree under $TMPDIR with this checkout's .venv; outputs go to $TMPDIR/bench-wall-time/, never results/.
set -euo pipefail
cd "$(dirname "$0")/../../.."
base=${1:?give the commit to compare against, e.g. f351bde}
new=${2:-}
work=${TMPDIR:-/tmp}/bench-wall-time
py="$PWD/.venv/bin/python"
envs="ABN-ResNet-v0 ABN-ResNet20Quarter-v1"
rm -rf "$work" && mkdir -p "$work"
code_for() {  # a worktree of the commit, or this checkout for the working tree
    if [ -z "$1" ]; then echo "$PWD"; else git worktree add -q --detach "$work/code-$1" "$1" && echo "$work/code-$1"; fi
}
declare -A secs
for label in base new; do
    rev=$([ "$label" = base ] && echo "$base" || echo "$new")
    code=$(code_for "$rev")
    for env in $envs; do
        start=$(date +%s.%N)
        (cd "$code" && PYTHONPATH="$code" OMP_NUM_THREADS=1 "$py" -m agents.app.cli bench --env "$env" \
            --out "$work/$label/$env" --no-progress) > "$work/$label-$env.log" 2>&1
        secs[$label,$env]=$(echo "$(date +%s.%N) - $start" | bc)
        echo "$label $env: ${secs[$label,$env]} s" >&2
    done
    [ -n "$rev" ] && git worktree remove --force "$code"
done
out=docs/results/bench-wall-time.md
{
    echo "\`make bench\` wall time, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, one torch thread per process"
    echo "(\`bash docs/results/scripts/bench_wall_time.sh $base${new:+ $new}\`, run alone on the machine):"
    echo
    echo "| task | $base s | ${new:-this tree} s | ratio |"
    echo "| --- | ---: | ---: | ---: |"
    tb=0; tn=0
    for env in $envs; do
        b=${secs[base,$env]}; n=${secs[new,$env]}; tb=$(echo "$tb + $b" | bc); tn=$(echo "$tn + $n" | bc)
        printf '| %s | %.0f | %.0f | %.2f |\n' "$env" "$b" "$n" "$(echo "$n / $b" | bc -l)"
    done
    printf '| both | %.0f | %.0f | %.2f |\n' "$tb" "$tn" "$(echo "$tn / $tb" | bc -l)"
} > "$out"
cat "$out"
