#!/usr/bin/env bash
# Which tensor-core instructions each CUDA architecture's SASS holds, from the built kernels
# (cuobjdump: part of the CUDA toolkit, absent from some minimal installs). For every arch in
# TV_CUDA_ARCHS it counts, per object file of kernels/, the int8 (IMMA), FP8 (QMMA), bf16/fp16
# (HMMA) mma.sync and the Hopper warpgroup (HGMMA / IGMMA / QGMMA) instructions, and fails when a
# kernel that must use int8 or FP8 tensor cores has none for that arch: quant.cu (W8A8 GEMM,
# int8) on sm_120a and sm_90a, sagesla.cu (int8 Q·Kᵀ and e4m3 P·V) on sm_120a (and its int8 on
# sm_90a), quant_sm90.cu (the Hopper W8A8 GEMM: warpgroup int8, IGMMA) on sm_90a, and
# sagesla_sm90.cu (SageSLA's Hopper attention: IGMMA for Q·Kᵀ and QGMMA for P·V, both required) on
# sm_90a. Hopper has no FP8 mma.sync: ptxas lowers sagesla.cu's e4m3 mma.sync to f16 HMMA on
# sm_90a (seen on the H100: 0 QMMA, 608 HMMA); that portable kernel is printed as a NOTE there, the
# FP8 tensor-core work on sm_90a being sagesla_sm90.cu's QGMMA.
# Usage: scripts/check_sass.sh [BUILD]   (default build; prints a table; exit 1 on a missing one)
set -uo pipefail
BUILD=${1:-build}
CUOBJDUMP=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
[ -x "$CUOBJDUMP" ] || { echo "check_sass: no cuobjdump (CUDA toolkit's cuda-cuobjdump)" >&2; exit 2; }
objs=$(find "$BUILD/kernels" -name '*.cu.o' | sort)
[ -n "$objs" ] || { echo "check_sass: no kernel objects under $BUILD/kernels" >&2; exit 2; }
status=0
printf '%-28s %-8s %6s %6s %6s %6s %6s %6s\n' object arch IMMA QMMA HMMA HGMMA IGMMA QGMMA
for o in $objs; do
  for arch in sm_90a sm_120a; do
    sass=$("$CUOBJDUMP" -sass -arch "$arch" "$o" 2>/dev/null)
    [ -n "$sass" ] || continue
    count() { grep -c -E "^\s*/\*[0-9a-f]+\*/\s+(@!?U?P[0-9T]+ )?$1[ .]" <<<"$sass"; }
    i=$(count IMMA); q=$(count QMMA); h=$(count HMMA); hg=$(count HGMMA); ig=$(count IGMMA); qg=$(count QGMMA)
    name=$(basename "$o")
    printf '%-28s %-8s %6s %6s %6s %6s %6s %6s\n' "$name" "$arch" "$i" "$q" "$h" "$hg" "$ig" "$qg"
    case "$name" in
      quant.cu.o) [ $((i + ig)) -gt 0 ] || { echo "  MISSING: no int8 MMA in $name for $arch"; status=1; } ;;
      quant_sm90.cu.o)
        [ "$arch" != sm_90a ] || [ "$ig" -gt 0 ] || { echo "  MISSING: no IGMMA in $name"; status=1; } ;;
      sagesla_sm90.cu.o)
        if [ "$arch" = sm_90a ]; then
          [ "$ig" -gt 0 ] || { echo "  MISSING: no IGMMA (int8 Q·Kᵀ) in $name"; status=1; }
          [ "$qg" -gt 0 ] || { echo "  MISSING: no QGMMA (e4m3 P·V) in $name"; status=1; }
        fi ;;
      sagesla.cu.o)
        [ $((i + ig)) -gt 0 ] || { echo "  MISSING: no int8 MMA in $name for $arch"; status=1; }
        if [ $((q + qg)) -gt 0 ]; then
          :
        elif [ "$arch" = sm_90a ]; then
          echo "  NOTE: $name on $arch: e4m3 mma.sync lowered to HMMA (Hopper's FP8: sagesla_sm90.cu)"
        else
          echo "  MISSING: no FP8 MMA in $name for $arch"; status=1
        fi ;;
    esac
  done
done
exit $status
