#!/usr/bin/env bash
# `turbovid-engine bench` with the e2e stage on the tiny random model (CPU): the JSON must hold a
# generate_e2e row per attention mode with a positive median, one sample per repeat and no error,
# next to the sum-of-stages pipeline rows. Usage: engine_bench_e2e_test.sh path/to/turbovid-engine
set -euo pipefail
tool=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$tool" bench --model tiny --random-weights --backend cpu --width 128 --height 128 --frames 5 \
  --steps 2 --attention dense,sla --stages text,dit,vae,mp4,e2e --repeat 2 --warmup 1 \
  --work-dir "$work/w" --json "$work/bench.json" >"$work/out.txt"
cat "$work/out.txt"
grep -q "^generate_e2e " "$work/out.txt" || { echo "FAIL: no generate_e2e row in the table"; exit 1; }

/usr/bin/python3 - "$work/bench.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rows = report["rows"]
assert report["ok"], "bench reported a failed stage"
stages = [r["stage"] for r in rows]
for mode in ("dense", "sla"):
    e2e = [r for r in rows if r["stage"] == "generate_e2e" and r["attention"] == mode]
    assert len(e2e) == 1, f"{mode}: {len(e2e)} generate_e2e rows"
    r = e2e[0]
    assert not r["error"], r["error"]
    assert r["median_ms"] is not None and r["median_ms"] > 0, r
    assert r["n"] == 2 and all(v > 0 for v in r["samples_ms"]), r
    assert "MP4" in r["note"], r["note"]
    assert any(p["stage"] == "pipeline" and p["attention"] == mode for p in rows), f"{mode}: no pipeline row"
    # The MP4's tail (encode wait after the last decoded chunk), per timed run, naming the
    # encoder the writer chose: libx264 here (no NVENC on a CPU machine).
    tail = [r for r in rows if r["stage"] == "mp4_tail" and r["attention"] == mode]
    assert len(tail) == 1, f"{mode}: {len(tail)} mp4_tail rows"
    assert tail[0]["n"] == 2 and all(v >= 0 for v in tail[0]["samples_ms"]), tail[0]
    assert "encoder x264" in tail[0]["note"] and "NVENC probe" in tail[0]["note"], tail[0]["note"]
    assert "(x264)" in r["note"], r["note"]
# The measured rows come right after the sums they check.
last_pipeline = max(i for i, s in enumerate(stages) if s == "pipeline")
first_e2e = min(i for i, s in enumerate(stages) if s == "generate_e2e")
assert first_e2e > last_pipeline, stages
print("bench e2e: generate_e2e rows ok:",
      {r["attention"]: r["median_ms"] for r in rows if r["stage"] == "generate_e2e"},
      "mp4 tails (ms):", {r["attention"]: r["median_ms"] for r in rows if r["stage"] == "mp4_tail"})
PY

# Stage selection: e2e alone loads only the pipeline.
"$tool" bench --model tiny --random-weights --backend cpu --width 64 --height 64 --frames 5 \
  --steps 1 --attention sla --stages e2e --repeat 1 --warmup 0 --work-dir "$work/w" \
  --json "$work/e2e_only.json" >/dev/null
/usr/bin/python3 - "$work/e2e_only.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert [r["stage"] for r in rows] == ["load_pipeline", "generate_e2e", "mp4_tail"], [r["stage"] for r in rows]
assert rows[1]["median_ms"] > 0 and not rows[1]["error"], rows[1]
PY
echo "engine bench e2e: all checks passed"
