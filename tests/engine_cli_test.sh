#!/usr/bin/env bash
# turbovid-engine end to end: tiny checkpoints → generate (T2V and I2V-MoE) → ffprobe checks
# frame count and size. Usage: engine_cli_test.sh path/to/turbovid-engine
set -euo pipefail
tool=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

probe() {  # file → "width height frames"
  ffprobe -v error -count_frames -select_streams v:0 \
    -show_entries stream=width,height,nb_read_frames,codec_name,pix_fmt -of csv=p=0 "$1"
}
expect() {  # file expected-csv
  got=$(probe "$1")
  if [ "$got" != "$2" ]; then echo "FAIL $1: ffprobe says '$got', want '$2'"; exit 1; fi
  echo "ok $1: $got"
}

"$tool" make-tiny-checkpoint --kind t2v --out "$work/t2v" >/dev/null
"$tool" make-tiny-checkpoint --kind i2v-moe --out "$work/i2v" >/dev/null
"$tool" inspect "$work/t2v/diffusion_pytorch_model.safetensors" >/dev/null

"$tool" generate --model-dir "$work/t2v" --prompt "a lighthouse at dusk, waves" --frames 9 \
  --width 96 --height 64 --steps 2 --seed 3 --out "$work/t2v.mp4"
expect "$work/t2v.mp4" "h264,96,64,yuv420p,9"
"$tool" generate --model-dir "$work/t2v" --prompt "a lighthouse at dusk, waves" --frames 5 \
  --width 128 --height 128 --steps 4 --attention sla --out "$work/t2v_sla.mp4"
expect "$work/t2v_sla.mp4" "h264,128,128,yuv420p,5"

# I2V: a 3:2 image at a 96x64 target area → adaptive size 96x64.
ffmpeg -v error -f lavfi -i testsrc=size=120x80 -frames:v 1 "$work/in.png"
"$tool" generate --model-dir "$work/i2v" --prompt "the scene comes alive" --image "$work/in.png" \
  --frames 5 --width 96 --height 64 --steps 4 --out "$work/i2v.mp4"
expect "$work/i2v.mp4" "h264,96,64,yuv420p,5"

# Bad input: named errors, non-zero exit.
if out=$("$tool" generate --model-dir "$work/t2v" --prompt "x" --frames 80 --out "$work/bad.mp4" 2>&1); then
  echo "FAIL: frames 80 accepted"; exit 1
fi
echo "$out" | grep -q "frames: 80 is not 4k+1" || { echo "FAIL: $out"; exit 1; }
echo "engine cli: all checks passed"
