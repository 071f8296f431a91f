#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in their own build dir and
# runs each for a bounded time on a seed corpus from the golden files. Exits non-zero on a crash.
# Usage: scripts/fuzz.sh [SECONDS]   (default $FUZZ_SECONDS or 30 per target)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_TARGET=${1:-${FUZZ_SECONDS:-30}}
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
GOLDEN=$ROOT/tests/data/golden
TARGETS=(fuzz_safetensors fuzz_pickle fuzz_pth fuzz_png fuzz_mp4_probe fuzz_multipart)

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DTV_BUILD_SERVICE=OFF -DTV_BUILD_TESTS=OFF -DTV_BUILD_FUZZERS=ON >/dev/null
ninja -C "$BUILD" "${TARGETS[@]}"

# Seeds: every golden safetensors file (large ones cut to their first 64 KiB, which keeps the
# header: whole multi-MB inputs would slow every run), data.pkl and the archive of
# rcm_t2v/weights.pth.
SEEDS=$BUILD/seeds
rm -rf "$SEEDS"
mkdir -p "$SEEDS"/{fuzz_safetensors,fuzz_pickle,fuzz_pth,fuzz_png,fuzz_mp4_probe,fuzz_multipart}
for f in "$GOLDEN"/*/*.safetensors; do
  head -c 65536 "$f" >"$SEEDS/fuzz_safetensors/$(basename "$(dirname "$f")")_$(basename "$f")"
done
python3 - "$GOLDEN/rcm_t2v/weights.pth" "$SEEDS/fuzz_pickle/data.pkl" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
open(sys.argv[2], "wb").write(z.read(name))
PY
# libFuzzer caps inputs at 1 MiB, so the golden archive would arrive truncated: add a small
# torch.save-layout archive made here (pickle with stand-in torch globals, stored zip entries).
python3 - "$SEEDS/fuzz_pth/small.pth" "$SEEDS/fuzz_pickle/small.pkl" <<'PY'
import collections, pickle, struct, sys, types, zipfile
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules.update({"torch": torch, "torch._utils": utils})
def _rebuild_tensor_v2(*args): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
storage_types = {}
for name in ("FloatStorage", "BFloat16Storage", "CharStorage", "LongStorage"):
    storage_types[name] = type(name, (), {"__module__": "torch"}); setattr(torch, name, storage_types[name])
class Storage:
    def __init__(self, kind, key, numel): self.kind, self.key, self.numel = kind, key, numel
class Tensor:
    def __init__(self, storage, offset, size, stride): self.args = (storage, offset, size, stride)
    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args + (False, collections.OrderedDict()))
class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", storage_types[obj.kind], obj.key, "cpu", obj.numel)
        return None
s0, s1, s2 = Storage("FloatStorage", "0", 6), Storage("BFloat16Storage", "1", 4), Storage("CharStorage", "2", 8)
sd = collections.OrderedDict()
sd["blocks.0.self_attn.q.weight"] = Tensor(s0, 0, (2, 3), (3, 1))
sd["blocks.0.self_attn.q.bias"] = Tensor(s1, 0, (4,), (1,))
sd["blocks.0.ffn.0.int8_weight"] = Tensor(s2, 0, (2, 2, 2), (4, 2, 1))
sd["transposed"] = Tensor(s0, 0, (3, 2), (1, 3))
sd._metadata = collections.OrderedDict({"": {"version": 1}})
import io
buf = io.BytesIO(); Pickler(buf, protocol=2).dump(sd); pkl = buf.getvalue()
open(sys.argv[2], "wb").write(pkl)
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", pkl)
    z.writestr("archive/byteorder", "little")
    z.writestr("archive/data/0", struct.pack("<6f", *range(6)))
    z.writestr("archive/data/1", bytes(8))
    z.writestr("archive/data/2", bytes(range(8)))
    z.writestr("archive/version", "3\n")
PY
# PNG seeds: RGB, grey+alpha, RGBA and palette images written here with zlib. MP4 seed:
# a four-frame H.264 clip from the ffmpeg command where there is one.
python3 - "$SEEDS/fuzz_png" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
def png(name, w, h, depth, ctype, channels, interlace=0, extra=b""):
    rows = b"".join(bytes([y % 5]) + bytes((x * 7 + y * 3 + c) % 256 for x in range(w) for c in range(channels))
                    for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    open(f"{sys.argv[1]}/{name}.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
        + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
png("rgb", 8, 6, 8, 2, 3)
png("gray_alpha", 5, 4, 8, 4, 2)
png("palette", 4, 4, 8, 3, 1, extra=chunk(b"PLTE", bytes(range(48))))
png("rgba", 9, 9, 8, 6, 4)
PY
if command -v ffmpeg >/dev/null; then
  ffmpeg -v error -f lavfi -i testsrc=size=64x48:rate=8 -frames:v 4 -c:v libx264 -pix_fmt yuv420p \
    -movflags +faststart -y "$SEEDS/fuzz_mp4_probe/clip.mp4" || true
  # A fragmented one (moof/traf/trun, as progressive jobs upload), two frames per fragment.
  ffmpeg -v error -f lavfi -i testsrc=size=64x48:rate=8 -frames:v 4 -c:v libx264 -pix_fmt yuv420p \
    -g 2 -movflags +frag_keyframe+empty_moov+default_base_moof -y \
    "$SEEDS/fuzz_mp4_probe/fragmented.mp4" || true
fi

status=0
# A create call as the OpenAI SDKs send it: a field and a file part.
printf 'multipart/form-data; boundary=XyZ\n--XyZ\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na fox\r\n--XyZ\r\nContent-Disposition: form-data; name="input_reference"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n' \
  >"$SEEDS/fuzz_multipart/create.txt"
for t in "${TARGETS[@]}"; do
  corpus=$BUILD/corpus/$t
  artifacts=$BUILD/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  echo "== $t: ${SECONDS_PER_TARGET}s"
  if ! "$BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$SEEDS/$t" \
      >"$BUILD/$t.log" 2>&1; then
    echo "FAIL $t (see $BUILD/$t.log; inputs in $artifacts)"
    tail -40 "$BUILD/$t.log"
    status=1
  else
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)|Done [0-9]+ runs" "$BUILD/$t.log" || true
    echo "ok $t"
  fi
done
exit $status
