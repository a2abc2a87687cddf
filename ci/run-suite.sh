#!/usr/bin/env bash
# termwatch in CI, as plain shell: the same steps as ci/termwatch.yml, runnable anywhere.
#
#   ci/run-suite.sh [build] [suite] [snapshots] [bench]   (no argument: build suite snapshots)
#
#   build      cargo build --release
#   suite      run the scenarios with JUnit output (one shard with PARTITION=hash:M/N)
#   snapshots  fail on a changed or missing snapshot and on an orphaned one (a .snap with no
#              scenario); the new versions are left in $OUT/snapshots-new as <name>.snap.new
#   bench      benchmark the base ref and this tree, then `termwatch compare` (needs BASE_REF)
#
# Settings (environment):
#   SCENARIOS   scenario folder                       [scenarios]
#   ROOT        folder scenario names are relative to [$SCENARIOS]
#   SNAPSHOTS   snapshot folder                       [snapshots]
#   OUT         where reports and artifacts go        [ci-out]
#   PARTITION   e.g. hash:2/3: run only that shard    [all]
#   REPEAT      run every scenario N times, flaky = failure [1]
#   BASE_REF    git ref to benchmark against, e.g. origin/main
#   BENCH_ARGS  extra arguments of `termwatch bench`
#   TERMWATCH   the binary                            [target/release/termwatch]
#
# Every step runs even when an earlier one failed; the exit code is 1 when any failed
# (2 for bad input), so one CI run shows every problem.
set -uo pipefail

SCENARIOS=${SCENARIOS:-scenarios}
ROOT=${ROOT:-$SCENARIOS}
SNAPSHOTS=${SNAPSHOTS:-snapshots}
OUT=${OUT:-ci-out}
PARTITION=${PARTITION:-}
REPEAT=${REPEAT:-1}
BASE_REF=${BASE_REF:-}
BENCH_ARGS=${BENCH_ARGS:-}
TERMWATCH=${TERMWATCH:-target/release/termwatch}

status=0
fail() {
    echo "ci: $*" >&2
    [ "$status" -eq 0 ] && status=1
}

step_build() {
    cargo build --release --locked || { echo "ci: build failed" >&2; exit 1; }
}

step_suite() {
    local junit="$OUT/junit${PARTITION:+-${PARTITION//[:\/]/-}}.xml"
    local shard=()
    [ -n "$PARTITION" ] && shard=(--partition "$PARTITION")
    echo "ci: scenarios in $SCENARIOS${PARTITION:+, shard $PARTITION}; JUnit to $junit"
    "$TERMWATCH" list "$SCENARIOS" --root "$ROOT" "${shard[@]}"
    "$TERMWATCH" run "$SCENARIOS" --root "$ROOT" "${shard[@]}" --repeat "$REPEAT" \
        --format junit --output "$junit"
    local code=$?
    [ "$code" -eq 0 ] || fail "the suite failed (exit $code); see $junit"
}

step_snapshots() {
    local new="$OUT/snapshots-new" scratch="$OUT/snapshots-rendered"
    rm -rf "$new" "$scratch"
    mkdir -p "$new"
    "$TERMWATCH" run "$SCENARIOS" --root "$ROOT" --snapshots check --snapshot-dir "$SNAPSHOTS"
    local code=$?
    if [ "$code" -ne 0 ]; then
        fail "snapshot check failed (exit $code): a snapshot differs or is missing"
        # Render every trace into a scratch folder and keep the ones that differ as .snap.new.
        "$TERMWATCH" run "$SCENARIOS" --root "$ROOT" --snapshots update --snapshot-dir "$scratch" >/dev/null
        [ -d "$scratch" ] && (cd "$scratch" && find . -name '*.snap' -print) | while read -r snap; do
            if ! cmp -s "$scratch/$snap" "$SNAPSHOTS/$snap"; then
                mkdir -p "$(dirname "$new/$snap")"
                cp "$scratch/$snap" "$new/$snap.new"
                echo "ci: new version kept: $new/$snap.new"
            fi
        done
    fi
    # Orphans: a snapshot whose scenario no longer exists.
    local names orphans
    names=$("$TERMWATCH" list "$SCENARIOS" --root "$ROOT" | cut -f1 | sort)
    orphans=$(cd "$SNAPSHOTS" 2>/dev/null && find . -name '*.snap' | sed 's|^\./||; s|\.snap$||' | sort |
        comm -13 <(printf '%s\n' "$names") -)
    if [ -n "$orphans" ]; then
        fail "orphaned snapshots (no scenario of that name): $(echo "$orphans" | tr '\n' ' ')"
    fi
}

step_bench() {
    if [ -z "$BASE_REF" ]; then
        echo "ci: bench skipped: set BASE_REF to the ref to compare with" >&2
        return
    fi
    local base="$OUT/base-tree"
    rm -rf "$base"
    git worktree add --detach "$base" "$BASE_REF" || { fail "cannot check out $BASE_REF"; return; }
    if cargo build --release --locked --manifest-path "$base/Cargo.toml" --target-dir "$OUT/base-target"; then
        # shellcheck disable=SC2086 # BENCH_ARGS is a list of words
        "$OUT/base-target/release/termwatch" bench $BENCH_ARGS --output "$OUT/bench-base.json" \
            || fail "the base benchmark failed"
        # shellcheck disable=SC2086
        "$TERMWATCH" bench $BENCH_ARGS --output "$OUT/bench-head.json" || fail "the benchmark failed"
        "$TERMWATCH" compare "$OUT/bench-base.json" "$OUT/bench-head.json" \
            --markdown "$OUT/bench-compare.md" || fail "a workload is slower than on $BASE_REF"
    else
        fail "cannot build $BASE_REF"
    fi
    git worktree remove --force "$base"
}

mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build suite snapshots)
for step in "${steps[@]}"; do
    case "$step" in
        build | suite | snapshots | bench) "step_$step" ;;
        *) echo "ci: unknown step \`$step\` (build, suite, snapshots, bench)" >&2; exit 2 ;;
    esac
done
exit "$status"
