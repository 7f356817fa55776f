#!/usr/bin/env bash
# The one prepared GPU check of the CUDA backend (issue 5). Two steps, because the GPU machines
# have no Rust toolchain and no network:
#
#   tools/gpu_check.sh prepare   # here (x86-64, with cargo): release-builds `mvb` and the
#                                # integration-test binary and packs them into .gpu/ (ignored
#                                # by git through .git/info/exclude), about 30 MB compressed
#   tools/gpu_check.sh run       # on the GPU machine, from the repository root, with .gpu
#                                # carried: every CUDA path in one run of under 10 minutes:
#                                # the tests/it filters `cuda::` (kernels, safe-API checks,
#                                # models), `ops::` (each compute-layer op) and `decoder` (the
#                                # decoders against transformers, f32 and bf16, on the GPU),
#                                # `grad::` (the training ops), `lora_train::` (FT-LoRA against
#                                # torch + PEFT) and `llava` (LLaVA-1.5 against transformers), then
#                                # `mvb bench kernels` (attention, LoRA SGMV, ViT-B/16), then
#                                # tools/gpu_vs_torch.py (mvb and PyTorch on the same card in the
#                                # same run: ViT-B/16 and two decoder shapes); everything lands in
#                                # $OUT (default ./gpu-out)
#
# With the device tool: run(command="bash tools/gpu_check.sh run", carry=[".gpu"], timeout_s=540).
# `run` writes $OUT/gpu_check.md (card, date, commit, test summary, the benchmark tables) to be
# copied into docs/CUDA.md, and $OUT/tests.log, bench.log, run.log, vs_torch.log, run_results.json and
# run_predictions.jsonl (at most 8 files come back). Set QUICK=1 for a smoke run; FILTERS, KERNELS,
# RUN and TORCH (see `run`) choose sections. The tree that travels must stay under 64 MiB with
# .gpu/ (14 MB): all the test fixtures and all of data/ together do not fit, so a run that needs
# data/ (RUN=1) leaves tests/fixtures/tiny-* behind and skips `cuda::` (see docs/CUDA.md).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

prepare() {
    set -e
    local target=${CARGO_TARGET_DIR:-$root/target}
    # One build: the test build also builds the `mvb` binary, with the same features (a separate
    # `cargo build --bin mvb` unifies features differently and rebuilds half the dependencies).
    nice -n 19 cargo test --release --test it --no-run 2>&1 | tee /tmp/gpu_check_build.log
    local it
    it=$(grep -o '(target[^)]*/it-[0-9a-f]*)\|([^)]*/deps/it-[0-9a-f]*)' /tmp/gpu_check_build.log | tail -1 | tr -d '()')
    [ -n "$it" ] || { echo "no test binary found in the build log" >&2; exit 1; }
    case $it in /*) ;; *) it="$root/$it" ;; esac
    rm -rf .gpu && mkdir -p .gpu
    cp "$target/release/mvb" .gpu/mvb
    cp "$it" .gpu/it
    strip .gpu/mvb .gpu/it 2>/dev/null || true
    # Where the binaries look for the repository and for `mvb` (paths compiled in).
    printf '%s\n%s\n' "$root" "$target/release/mvb" > .gpu/paths
    git rev-parse HEAD > .gpu/commit 2>/dev/null || echo unknown > .gpu/commit
    git status --porcelain | grep -q . && echo "+ uncommitted changes" >> .gpu/commit
    xz -T2 -6 .gpu/mvb .gpu/it
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    du -sh .gpu
}

# Puts the CUDA libraries where cudarc (built for CUDA 12.6 names: libnvrtc.so, libnvrtc.so.12,
# libcublas.so, ...) finds them, also on CUDA 13 machines whose files are libnvrtc.so.13 etc.
setup_libraries() {
    local links=/tmp/mvb-cuda-libs
    mkdir -p "$links"
    local dirs=""
    for lib in nvrtc cublas cublasLt; do
        local found
        found=$(find /usr/local/cuda/lib64 /usr/local/cuda/targets /usr/lib/x86_64-linux-gnu /opt /usr/local/lib \
            -name "lib$lib.so*" \( -type f -o -type l \) 2>/dev/null | grep -v -e stub -e builtins -e alt | sort -V | tail -1)
        if [ -n "$found" ]; then
            ln -sf "$found" "$links/lib$lib.so"
            dirs="$dirs:$(dirname "$(readlink -f "$found")")"
            echo "lib$lib: $found"
        else
            echo "lib$lib: NOT FOUND"
        fi
    done
    export LD_LIBRARY_PATH="$links$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

run() {
    local out=${OUT:-$root/gpu-out}
    mkdir -p "$out"
    [ -d .gpu ] || { echo ".gpu/ is missing: run 'tools/gpu_check.sh prepare' first and carry .gpu" >&2; exit 1; }
    local bin=/tmp/mvb-gpu-bin
    mkdir -p "$bin"
    xz -dc .gpu/mvb.xz > "$bin/mvb" && xz -dc .gpu/it.xz > "$bin/it" && chmod +x "$bin/mvb" "$bin/it" || exit 1
    # The test binary reads fixtures from the repository path and runs `mvb` from the path it
    # was built with: point both at this checkout.
    local built_root built_mvb
    built_root=$(sed -n 1p .gpu/paths)
    built_mvb=$(sed -n 2p .gpu/paths)
    if [ "$built_root" != "$root" ]; then
        mkdir -p "$(dirname "$built_root")" && ln -sfn "$root" "$built_root"
    fi
    [ -e "$built_mvb" ] || { mkdir -p "$(dirname "$built_mvb")" && ln -s "$bin/mvb" "$built_mvb"; }
    setup_libraries > "$out/tests.log" 2>&1
    local card
    card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
    [ -n "$card" ] || card="unknown card (no nvidia-smi)"
    # What to run (the defaults: everything; each section can be left out to fit a second run
    # or the 64 MiB the device tool carries):
    #   FILTERS   the tests/it filters run on the GPU (a skip there is a failure)
    #   KERNELS=0 no `mvb bench kernels`
    #   TORCH     the gpu_vs_torch.py shapes (comma-separated; empty: none)
    #   RUN=0     no `mvb run --device cuda --precision f32` on the embedded default (its
    #             results.json and predictions.jsonl come back, to compare with the CPU's)
    local filters=${FILTERS:-cuda:: ops:: grad:: lora_train:: decoder llava swin medclip blip2}
    local torch_models=${TORCH-SmolLM2-135M,Llama-3.2-1B,Llama-2-7B}
    local quick="" iters=3
    [ "${QUICK:-0}" = 1 ] && quick=--quick && iters=1

    local t0=$SECONDS tests_rc=0 skipped=0
    if [ -n "$filters" ]; then
        # shellcheck disable=SC2086
        MVB_REQUIRE_NVRTC=1 timeout 150 "$bin/it" $filters --nocapture --test-threads 1 >> "$out/tests.log" 2>&1
        tests_rc=$?
        skipped=$(grep -o 'SKIP cuda [a-z]*' "$out/tests.log" | wc -l)
    fi
    echo "tests ($filters) rc=$tests_rc, skipped on cuda: $skipped ($((SECONDS - t0)) s)"

    t0=$SECONDS
    local bench_rc=0
    if [ "${KERNELS:-1}" = 1 ]; then
        timeout 100 "$bin/mvb" bench kernels $quick --out "$out/kernels.md" > "$out/bench.log" 2>&1
        bench_rc=$?
    fi
    echo "kernels rc=$bench_rc ($((SECONDS - t0)) s)"

    t0=$SECONDS
    local run_rc=0
    if [ "${RUN:-1}" = 1 ]; then
        local run_dir=/tmp/mvb-gpu-run
        rm -rf "$run_dir"
        timeout 200 "$bin/mvb" run --device cuda --precision f32 --out "$run_dir" > "$out/run.log" 2>&1
        run_rc=$?
        cp "$run_dir/results.json" "$out/run_results.json" 2>/dev/null
        cp "$run_dir/predictions.jsonl" "$out/run_predictions.jsonl" 2>/dev/null
    fi
    echo "mvb run (embedded default, cuda f32) rc=$run_rc ($((SECONDS - t0)) s)"

    t0=$SECONDS
    local torch_rc=0
    if [ -n "$torch_models" ]; then
        PYTHONUNBUFFERED=1 timeout 420 python3 tools/gpu_vs_torch.py --mvb "$bin/mvb" --iters $iters \
            --models "$torch_models" --out "$out/vs_torch.md" > "$out/vs_torch.log" 2>&1
        torch_rc=$?
    fi
    echo "against PyTorch rc=$torch_rc ($((SECONDS - t0)) s)"

    {
        echo "## Measured: ${card%%,*}, $(date -u +%Y-%m-%d)"
        echo
        echo "- card: $card"
        echo "- commit: $(tr '\n' ' ' < .gpu/commit)"
        echo "- parity tests (tests/it filters $filters on the GPU): $(grep '^test result' "$out/tests.log" | tail -1) (exit $tests_rc, $skipped skipped)"
        echo "- mvb run on the embedded default, cuda f32: exit $run_rc; $(grep -c . "$out/run_predictions.jsonl" 2>/dev/null) prediction lines"
        echo
        if [ -s "$out/kernels.md" ]; then cat "$out/kernels.md"; elif [ -s "$out/bench.log" ]; then echo '```'; tail -20 "$out/bench.log"; echo '```'; fi
        echo
        echo "### Against PyTorch on the same card, same run (tools/gpu_vs_torch.py)"
        echo
        if [ -s "$out/vs_torch.md" ]; then cat "$out/vs_torch.md"; elif [ -s "$out/vs_torch.log" ]; then echo '```'; tail -20 "$out/vs_torch.log"; echo '```'; fi
    } > "$out/gpu_check.md"
    cat "$out/gpu_check.md"
    grep -E 'FAILED|panicked|relative error|^decoder cuda' "$out/tests.log" | head -40
    tail -5 "$out/run.log" 2>/dev/null
    [ "$tests_rc" = 0 ] && [ "$skipped" = 0 ] && [ "$bench_rc" = 0 ] && [ "$run_rc" = 0 ] && [ "$torch_rc" = 0 ]
}

case ${1:-run} in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: tools/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
