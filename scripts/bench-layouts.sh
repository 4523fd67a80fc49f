#!/usr/bin/env bash
# The HTTP bench's interleaved report over many function layouts and stack
# offsets of the same code, so that a figure is not one link's luck.
#
# Where the linker places each function moves the per-request figures of
# `benches/http.rs` by about ±2 points (of a bare request's time) between
# builds of identical code: the hot path of an axum request touches more
# code than the instruction cache holds, so which lines share cache sets
# decides how much of it misses. Where the stack starts matters too: the
# same binary run from a longer path (which moves the stack, as the
# environment does) measured 2 points higher for `red`.
#
#   scripts/bench-layouts.sh build NAME [LAYOUTS]
#       Links the bench of the current tree LAYOUTS times (default 8), each
#       with its functions in another random order (`--shuffle-sections`;
#       lld is Rust's default linker on x86-64 Linux), into
#       target/layouts/NAME-<seed>.
#   scripts/bench-layouts.sh run RUNS NAME...
#       Runs the report RUNS times on every layout of every NAME, the names
#       interleaved (so that the machine's drift falls on all of them
#       alike), each run with an environment variable of random length
#       (0 to 4095 bytes) that puts the stack at a random offset in its
#       page. Prints each variant's mean paired ratio to bare per NAME, with
#       its standard deviation and standard error over the runs, split into
#       the machine's fast and slow states (a bare request under or over
#       SLOW_NS, default 1100 ns).
#
# Comparing a change: `build before` on the old tree, `build after` on the
# new one, then `run 3 before after`. With 8 layouts and 3 runs each, the
# standard error of a mean is about 0.3 points.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/layouts

build() {
    local name=$1 layouts=${2:-8} seed exe
    mkdir -p "$out"
    for seed in $(seq "$layouts"); do
        exe=$(cargo rustc --quiet --profile bench --bench http --features http \
            --message-format=json -- -C "link-arg=-Wl,--shuffle-sections=.text*=$seed" |
            grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
        cp "$exe" "$out/$name-$seed"
    done
}

run() {
    local runs=$1 name seed padding bin
    shift
    local results=$out/results.txt
    for name in "$@"; do
        if [ ! -e "$out/$name-1" ]; then
            echo "no layouts of '$name' in $out: run '$0 build $name' first" >&2
            exit 2
        fi
    done
    : >"$results"
    for _ in $(seq "$runs"); do
        for seed in $(seq 1000); do
            [ -e "$out/$1-$seed" ] || break
            for name in "$@"; do
                bin=$out/$name-$seed
                if [ ! -e "$bin" ]; then
                    echo "'$name' has no layout $seed (it must have as many as '$1')" >&2
                    exit 2
                fi
                padding=$(head -c $((RANDOM % 4096)) /dev/zero | tr '\0' x)
                # One line per run: name, bare (ns), then each variant and
                # its paired ratio (%).
                PLIMSOLL_BENCH_PADDING=$padding "$bin" --bench nothing_matches 2>/dev/null |
                    awk -v name="$name" '
                        /^interleaved/ { on = 1; next }
                        on && match($0, /\( *[-+][0-9.]+% paired/) {
                            paired = substr($0, RSTART, RLENGTH)
                            gsub(/[(% +]|paired/, "", paired)
                            if ($1 == "bare") bare = $2
                            else line = line " " $1 " " paired
                        }
                        END { print name, bare line }' >>"$results"
            done
        done
    done
    awk -v slow="${SLOW_NS:-1100}" '
        {
            state = ($2 > slow) ? "slow" : "fast"
            set = state " " $1
            if (!(set in runs)) sets[++nsets] = set
            runs[set]++
            for (i = 3; i + 1 <= NF; i += 2) {
                if (!($i in seen)) { seen[$i] = 1; names[++nnames] = $i }
                sum[set, $i] += $(i + 1)
                sq[set, $i] += $(i + 1) * $(i + 1)
            }
        }
        END {
            for (s = 1; s <= nsets; s++) {
                set = sets[s]
                printf "%s: %d runs (paired ratio to bare: mean, sd, se)\n", set, runs[set]
                for (k = 1; k <= nnames; k++) {
                    n = runs[set]; mean = sum[set, names[k]] / n
                    var = sq[set, names[k]] / n - mean * mean
                    sd = sqrt(var > 0 ? var : 0)
                    printf "  %-18s %+6.2f%%  %5.2f  %5.2f\n", names[k], mean, sd, sd / sqrt(n)
                }
            }
        }' "$results"
}

case "${1:-}" in
build) shift && build "$@" ;;
run) shift && run "$@" ;;
*)
    echo "usage: $0 build NAME [LAYOUTS] | $0 run RUNS NAME..." >&2
    exit 2
    ;;
esac
