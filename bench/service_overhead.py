"""Service overhead on one GPU: the client-observed time from SubmitVideo to the last byte of
GetVideo, against Pipeline::Generate alone (`turbovid-engine bench --stages e2e`) on the same
checkpoint, shapes and GPU, in the same run. Where the service costs more, the worker's own stage
histograms (deltas of turbovid_worker_stage_duration_seconds_sum around each job) and the client's
timestamps split the difference: queue and assignment, the worker's stages, upload to the
scheduler, the artifact commit and the download.

Usage (GPU machine, after scripts/build_bare.sh --service):
  build-bare/bin/python3 bench/service_overhead.py --build-dir build-bare \
      --model-dir /tmp/turbovid-gpu/wan2.1-t2v-1.3b [--repeat 3] [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../tests/gpu"))


def stage_sums(text, harness):
    out = {}
    for key, value in harness.metric_values(text, "turbovid_worker_stage_duration_seconds_sum"):
        stage = key.split('stage="', 1)[1].split('"', 1)[0] if 'stage="' in key else key
        out[stage] = out.get(stage, 0.0) + value
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--model", default="wan2.1-t2v-1.3b")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--attention", default="sla", choices=["sla", "dense"])
    ap.add_argument("--json")
    args = ap.parse_args()
    os.environ["TV_BUILD_DIR"] = os.path.abspath(args.build_dir)
    import gpu_cluster
    from gpu_cluster import harness

    # 1. The engine alone, same shapes: Pipeline::Generate prompt -> MP4 file.
    engine_json = os.path.join(os.environ.get("TMPDIR", "/tmp"), "service-overhead-engine.json")
    cmd = [harness.binary("turbovid-engine"), "bench", "--model-dir", args.model_dir,
           "--backend", gpu_cluster.BACKEND, "--width", str(args.width), "--height", str(args.height),
           "--frames", str(args.frames), "--steps", str(args.steps), "--attention", args.attention,
           "--stages", "e2e", "--repeat", str(args.repeat), "--json", engine_json]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, timeout=600)
    rows = [r for r in json.load(open(engine_json))["rows"] if r["stage"] == "generate_e2e"]
    engine_ms = rows[0]["median_ms"]
    print(f"engine Pipeline::Generate median: {engine_ms:.1f} ms", flush=True)

    # 2. The service: one scheduler, one CUDA worker holding the model; a warm-up job, then timed.
    cluster = gpu_cluster.GpuCluster("overhead", [harness.model_flags(args.model, args.model_dir)])
    results = []
    try:
        client = cluster.client()
        attention = 2 if args.attention == "sla" else 1
        for i in range(args.repeat + 1):
            before = stage_sums(cluster.metrics(cluster.worker_ports["w0"]), harness)
            r = client.request(args.model, f"overhead run {i}: a cat walking on a fence at noon",
                               frames=args.frames, width=args.width, height=args.height,
                               steps=args.steps, seed=100 + i, attention=attention)
            t0 = time.monotonic()
            job = client.submit(r)
            t_ack = time.monotonic()
            marks = {}

            def on_update(j, marks=marks):
                key = (client.state_name(j), client.stage_name(j))
                marks.setdefault(key, time.monotonic())
            final = client.wait(job.job_id, timeout=600, on_update=on_update)
            t_done = time.monotonic()
            assert client.state_name(final) == "JOB_STATE_SUCCEEDED", final.error
            data = client.download(job.job_id)
            t_end = time.monotonic()
            after = stage_sums(cluster.metrics(cluster.worker_ports["w0"]), harness)
            stages = {k: round((after.get(k, 0) - before.get(k, 0)) * 1e3, 1) for k in after}
            running = [t for (state, _), t in marks.items() if state == "JOB_STATE_RUNNING"]
            row = {"run": i, "warmup": i == 0, "client_ms": round((t_end - t0) * 1e3, 1),
                   "submit_ack_ms": round((t_ack - t0) * 1e3, 2),
                   "to_running_ms": round((min(running) - t0) * 1e3, 1) if running else None,
                   "to_succeeded_ms": round((t_done - t0) * 1e3, 1),
                   "download_ms": round((t_end - t_done) * 1e3, 1), "mp4_bytes": len(data),
                   "worker_stage_ms": stages,
                   "worker_total_ms": round(sum(stages.values()), 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        cluster.close()

    timed = [r for r in results if not r["warmup"]]
    client_ms = statistics.median(r["client_ms"] for r in timed)
    worker_ms = statistics.median(r["worker_total_ms"] for r in timed)
    summary = {"engine_generate_median_ms": engine_ms, "service_client_median_ms": client_ms,
               "overhead_ms": round(client_ms - engine_ms, 1),
               "overhead_percent": round(100 * (client_ms - engine_ms) / engine_ms, 2),
               "worker_stage_total_median_ms": worker_ms,
               "shape": f"{args.width}x{args.height}x{args.frames}, {args.steps} steps, {args.attention}",
               "runs": results}
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
