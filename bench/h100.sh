#!/usr/bin/env bash
# The H100 benchmark in one device command: the CUDA kernel micro-benchmarks (if built), then
# `turbovid-engine bench` and bench/torch_reference.py on the same seeded random checkpoint and
# shapes, printed side by side with the issue's targets. Runs on the GPU machine from the
# repository root with the bundle of scripts/cuda_bundle.sh carried as .cudarun/.
#
# Usage: bench/h100.sh [PART...]          (default: 1.3b kernels)
#   kernels       turbovid-kernel-bench, when the bundle has it
#   1.3b          Wan2.1-T2V-1.3B, 480p, 81 frames, 4 steps: text, DiT dense + SLA, VAE, frames/MP4,
#                 then Pipeline::Generate end to end (engine only: prompt → MP4 file, "generate_e2e")
#   1.3b-compile  the PyTorch DiT again with torch.compile (dense, DiT only; compiling takes minutes)
#   14b           Wan2.1-T2V-14B, 720p, 81 frames, 4 steps, DiT only, dense + SLA, one repeat
#   smoke         the tiny model at 256x256, 9 frames, 2 steps: every stage (e2e too) and both programs in
#                 a minute (a first check of a new bundle; also runs here with the env below)
#   linears       bench/torch_linears.py: PyTorch's bf16 linear, torch._int_mm and torch._scaled_mm
#                 (FP8, rowwise scales) at the Wan linear shapes (the same-run reference of the
#                 int8/FP8 GEMM rows of tv_parity_test's Int8/Fp8 perf tests)
#   1.3b-quant    Wan2.1-T2V-1.3B, 480p, prompt → MP4 and DiT with int8 (--weights int8) and FP8
#                 (--weights fp8, turbo-fp8) block linears, sla and sagesla
#   14b-fp8       Wan2.1-T2V-14B bf16 checkpoint loaded as turbo-fp8, 720p, DiT only, sla and sagesla
#   14b-quant     Wan2.1-T2V-14B with int8 block linears (--weights int8, 14.3 GB), 720p, 81 frames,
#                 4 steps, DiT only: sla and sagesla (the "denoise <= 8 s" target)
#   a14b          Wan2.2-I2V-A14B, int8 experts (28.6 GB), 720p, 81 frames, 4 steps, image → MP4 end
#                 to end with SageSLA under --memory-limit-gib 32 (peak and plan in the row)
#   5090-emu      the RTX 5090 emulated on this GPU: TV_KERNELS=portable (no Hopper-only kernel,
#                 SageSLA in the sm_89/sm_120 build's numerics) and a 32 GiB budget: 1.3B 480p
#                 prompt → MP4 (sla, sagesla_sm89), then the A14B part's run the same way
# The 14B-class parts write 14–29 GB each: on a 64 GB disk run one of 14b/14b-quant/a14b per
# machine, or delete the previous model folder (TV_BENCH_CLEAN=1 does, before each 14B-class part).
# Everything lands in $OUT (default gpu-out): per-run .txt/.json, compare-*.txt, h100.log.
# Environment: TV_BENCH_WORK (checkpoints, default /tmp/turbovid-bench; the 1.3B set is 14.5 GB,
# the 14B DiT 28.6 GB more), TV_BENCH_BUDGET (seconds for the whole command, default 510: each
# step's timeout is cut to what is left, and a step that cannot fit is skipped), TV_BENCH_REPEAT,
# TV_BENCH_BACKEND (cuda), TV_BENCH_RUN (.cudarun/run), TV_BENCH_TORCH_ARGS (extra flags for
# torch_reference.py, e.g. "--device cpu --dtype fp32" for a smoke run on a machine without GPU),
# TV_PIPELINE_PROFILE=1 (the engine's e2e runs print their per-phase split to stderr, into
# engine-<tag>.txt; the phases are synchronised, so the e2e times of that run are not the figures).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
WORK=${TV_BENCH_WORK:-/tmp/turbovid-bench}
BUDGET=${TV_BENCH_BUDGET:-510}
REPEAT=${TV_BENCH_REPEAT:-3}
PY=${PYTHON:-python3}
RUN=${TV_BENCH_RUN:-.cudarun/run}
BACKEND=${TV_BENCH_BACKEND:-cuda}
read -r -a TORCH_ARGS <<<"${TV_BENCH_TORCH_ARGS:-}"
mkdir -p "$OUT" "$WORK"
LOG="$OUT/h100.log"
status=0

log() { echo "== [$(printf '%4d' "$SECONDS")s] $*" | tee -a "$LOG"; }

# step NAME LIMIT FILE CMD...: runs CMD under a timeout cut to the budget left (skipped when under
# 20 s are left), its output shown and appended to FILE.
step() {
  local name=$1 limit=$2 file=$3
  shift 3
  local left=$((BUDGET - SECONDS - 10))
  if [ "$left" -lt 20 ]; then
    log "SKIPPED $name: budget spent"
    status=1
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  log "$name (timeout ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$file"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    log "$name exited $rc$([ "$rc" -eq 124 ] && echo ' (timed out)')"
    status=1
  fi
  return "$rc"
}

compare() {  # compare TAG: side-by-side table of engine-TAG.json and torch-TAG.json
  "$PY" - "$OUT/engine-$1.json" "$OUT/torch-$1.json" <<'EOF' | tee "$OUT/compare-$1.txt"
import json, sys
def load(p):
    try:
        return json.load(open(p))
    except Exception as e:  # noqa: BLE001
        print(f"(no {p}: {e})")
        return {"rows": []}
e, t = load(sys.argv[1]), load(sys.argv[2])
key = lambda r: (r["stage"], r["attention"], r["step"])
er, tr = {key(r): r for r in e["rows"]}, {key(r): r for r in t["rows"]}
order = [key(r) for r in e["rows"]] + [k for k in (key(r) for r in t["rows"]) if k not in er]
f = lambda v, p=1: "-" if v is None else f"{v:.{p}f}"
def ms(r):
    return None if r is None or r.get("error") or r.get("median_ms") is None else r["median_ms"]
print(f"{e.get('model', t.get('model'))} {e.get('width')}x{e.get('height')} {e.get('frames')} frames, "
      f"{e.get('tokens')} tokens, {e.get('text_tokens')} text tokens; engine: {e.get('device')}; torch: "
      f"{t.get('backend')} on {t.get('device')}")
print(f"{'stage':<17} {'attn':<5} {'step':>4} {'engine ms':>11} {'torch ms':>11} {'torch/eng':>9} "
      f"{'eng TF/s':>9} {'torch TF/s':>10} {'eng GiB':>8} {'torch GiB':>9}  notes")
# The engine's measured Pipeline::Generate row sits beside PyTorch's sum-of-stages pipeline row
# (PyTorch has no end-to-end run to measure).
torch_key = lambda k: ("pipeline", k[1], k[2]) if k[0] == "generate_e2e" else k
for k in order:
    a, b = er.get(k), tr.get(torch_key(k))
    x, y = ms(a), ms(b)
    ratio = f"{y / x:.2f}x" if x and y else "-"
    gib = lambda r: None if r is None or (r.get("peak_bytes") or -1) <= 0 else r["peak_bytes"] / 2**30
    notes = "; ".join(s for s in [
        a and a.get("error") and "engine FAILED: " + a["error"][:120],
        b and b.get("error") and "torch FAILED: " + b["error"][:120],
        (a or b or {}).get("note", ""),
        k[0] == "generate_e2e" and b is not None and "torch column: its pipeline sum (no MP4)"] if s)
    print(f"{k[0]:<17} {k[1]:<5} {k[2] or '':>4} {f(x, 2):>11} {f(y, 2):>11} {ratio:>9} "
          f"{f((a or {}).get('tflops')):>9} {f((b or {}).get('tflops')):>10} {f(gib(a), 2):>8} {f(gib(b), 2):>9}  {notes}")
for name, v in (t.get("checks") or {}).items():
    print(f"torch vs engine outputs on the engine's inputs: {name:<18} rel. L2 {v:.3e}")
def mean_fwd(rows, att):
    v = [r["median_ms"] for r in rows if r["stage"] == "dit_forward" and r["attention"] == att
         and not r.get("error") and r.get("median_ms") is not None]
    return sum(v) / len(v) if v else None
if e.get("model") == "wan2.1-t2v-1.3b" and e.get("height") == 480:
    get = lambda st, att="": ms(er.get((st, att, 0)))
    targets = [("DiT forward dense", mean_fwd(e["rows"], "dense"), 430, mean_fwd(t["rows"], "dense")),
               ("DiT forward SLA", mean_fwd(e["rows"], "sla"), 250, mean_fwd(t["rows"], "sla")),
               ("VAE decode", get("vae_decode"), 620, ms(tr.get(("vae_decode", "", 0)))),
               ("pipeline SLA, sum of stages", get("pipeline", "sla"), 1600, ms(tr.get(("pipeline", "sla", 0)))),
               ("generate e2e SLA, measured", get("generate_e2e", "sla"), 1600, ms(tr.get(("pipeline", "sla", 0))))]
    print("issue 3 targets (1.3B, 480p, 81 frames, H100):")
    for name, got, goal, torch_ms in targets:
        verdict = "-" if got is None else ("MET" if got <= goal else f"MISSED by {got / goal:.2f}x")
        print(f"  {name:<34} engine {f(got, 1):>9} ms  target <= {goal} ms  {verdict:<16} torch same run {f(torch_ms, 1)} ms")
EOF
}

# bench_model TAG MODEL "SHAPE FLAGS" STAGES ATTENTION REPEAT ENGINE_LIMIT TORCH_LIMIT [ENGINE_ONLY]
# ENGINE_ONLY: stages only the engine runs (e2e: Pipeline::Generate end to end).
bench_model() {
  local tag=$1 model=$2 stages=$4 att=$5 repeat=$6 elimit=$7 tlimit=$8 eonly=${9:-}
  local shape
  read -r -a shape <<<"$3"
  step "checkpoint $model ($stages)" 400 "$LOG" \
    $RUN turbovid-engine bench --model "$model" --random-weights --prepare-only --work-dir "$WORK" \
    --stages "$stages" || return
  df -h "$WORK" | tail -1 | tee -a "$LOG"
  rm -f "$OUT/engine-$tag.txt" "$OUT/torch-$tag.txt"
  step "engine $tag" "$elimit" "$OUT/engine-$tag.txt" \
    $RUN turbovid-engine bench --model "$model" --random-weights --backend "$BACKEND" --work-dir "$WORK" \
    "${shape[@]}" --attention "$att" --stages "$stages${eonly:+,$eonly}" \
    --repeat "$repeat" --json "$OUT/engine-$tag.json" --dump "$WORK/dump-$tag"
  step "torch $tag" "$tlimit" "$OUT/torch-$tag.txt" \
    "$PY" bench/torch_reference.py --model-dir "$WORK/$model" "${shape[@]}" --attention "$att" \
    --stages "$stages" --repeat "$repeat" --engine-json "$OUT/engine-$tag.json" \
    --check "$WORK/dump-$tag" --json "$OUT/torch-$tag.json" "${TORCH_ARGS[@]}"
  compare "$tag"
}

# engine_only TAG LIMIT ENV... -- BENCH ARGS...: the engine's bench alone (no PyTorch counterpart at
# this level), its table in engine-TAG.txt and JSON in engine-TAG.json.
engine_only() {
  local tag=$1 limit=$2
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  rm -f "$OUT/engine-$tag.txt"
  step "engine $tag" "$limit" "$OUT/engine-$tag.txt" \
    env "${envs[@]}" $RUN turbovid-engine bench --backend "$BACKEND" --work-dir "$WORK" \
    --json "$OUT/engine-$tag.json" "$@"
}
clean_14b() {  # frees the disk of the other 14B-class folders (TV_BENCH_CLEAN=1)
  [ "${TV_BENCH_CLEAN:-0}" = 1 ] || return 0
  local d
  for d in wan2.1-t2v-14b wan2.1-t2v-14b-int8 wan2.2-i2v-a14b-int8; do
    [ "$d" = "$1" ] || rm -rf "${WORK:?}/$d"
  done
}
A14B_ARGS=(--model wan2.2-i2v-a14b --random-weights --weights int8 --resolution 720p --frames 81
  --steps 4 --stages e2e --repeat 1 --warmup 1 --memory-limit-gib 32)

log "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,temperature.gpu --format=csv,noheader 2>&1)"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tee -a "$LOG"
[ -x "$RUN" ] || { log "no $RUN: run scripts/cuda_bundle.sh on the build machine and carry .cudarun (or point TV_BENCH_RUN at a runner of a build made there: tests/gpu/all.sh does)"; exit 2; }
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(1.3b kernels)
for part in "${parts[@]}"; do
  case "$part" in
    kernels)
      if [ -x "$(dirname "$RUN")/bin/turbovid-kernel-bench" ]; then
        step "kernel bench" 120 "$OUT/kernel-bench.txt" $RUN turbovid-kernel-bench
      else
        log "no turbovid-kernel-bench in the bundle"
      fi ;;
    1.3b)
      bench_model 1.3b-480p wan2.1-t2v-1.3b "--resolution 480p --frames 81 --steps 4" text,dit,vae,mp4 \
        dense,sla "$REPEAT" 300 240 e2e ;;
    1.3b-compile)
      step "checkpoint wan2.1-t2v-1.3b (dit)" 400 "$LOG" $RUN turbovid-engine bench \
        --model wan2.1-t2v-1.3b --random-weights --prepare-only --work-dir "$WORK" --stages dit &&
        step "torch compile 1.3b-480p" 400 "$OUT/torch-compile-1.3b-480p.txt" "$PY" bench/torch_reference.py \
          --model-dir "$WORK/wan2.1-t2v-1.3b" --resolution 480p --frames 81 --steps 4 --attention dense \
          --stages dit --repeat "$REPEAT" --compile --label torch-compile \
          --json "$OUT/torch-compile-1.3b-480p.json" "${TORCH_ARGS[@]}" ;;
    14b)
      bench_model 14b-720p wan2.1-t2v-14b "--resolution 720p --frames 81 --steps 4" dit dense,sla 1 300 300 ;;
    linears)
      step "torch linears" 300 "$OUT/torch-linears.txt" "$PY" bench/torch_linears.py 10 \
        --json "$OUT/torch-linears.json" ;;
    1.3b-quant)
      for w in int8 fp8; do
        engine_only "1.3b-480p-$w" 240 -- --model wan2.1-t2v-1.3b --random-weights --weights "$w" \
          --resolution 480p --frames 81 --steps 4 --stages dit,e2e --attention sla,sagesla --repeat 3
      done ;;
    14b-fp8)
      clean_14b wan2.1-t2v-14b
      engine_only 14b-fp8-720p 420 -- --model wan2.1-t2v-14b --random-weights --weights fp8 \
        --resolution 720p --frames 81 --steps 4 --stages dit --attention sla,sagesla --repeat 1 ;;
    14b-quant)
      clean_14b wan2.1-t2v-14b-int8
      engine_only 14b-quant-720p 420 -- --model wan2.1-t2v-14b --random-weights \
        --weights int8 --resolution 720p --frames 81 --steps 4 --stages dit --attention sla,sagesla \
        --repeat 1 ;;
    a14b)
      clean_14b wan2.2-i2v-a14b-int8
      engine_only a14b-720p-32g 480 -- "${A14B_ARGS[@]}" --attention sagesla ;;
    5090-emu)
      engine_only 5090emu-1.3b-480p 300 TV_KERNELS=portable -- --model wan2.1-t2v-1.3b \
        --random-weights --resolution 480p --frames 81 --steps 4 --stages e2e \
        --attention sla,sagesla_sm89 --repeat 3 --memory-limit-gib 32
      clean_14b wan2.2-i2v-a14b-int8
      engine_only 5090emu-a14b-720p-32g 480 TV_KERNELS=portable -- "${A14B_ARGS[@]}" \
        --attention sagesla_sm89 ;;
    smoke)
      bench_model smoke tiny "--width 256 --height 256 --frames 9 --steps 2" text,dit,vae,mp4 dense,sla 1 120 180 e2e ;;
    *)
      log "unknown part '$part' (kernels, 1.3b, 1.3b-compile, 14b, smoke, linears, 1.3b-quant, 14b-fp8, 14b-quant, a14b, 5090-emu)"; status=2 ;;
  esac
done
log "done, status $status; results in $OUT"
exit $status
