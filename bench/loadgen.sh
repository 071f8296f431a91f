#!/usr/bin/env bash
# Scheduler load bench on this machine: makes the tiny T2V checkpoint, starts turbovid-scheduler
# and CPU turbovid-workers on loopback (temporary folder, embedded SQLite), then runs
# turbovid-loadgen with 1,000 queued jobs. Prints the numbers; asserts nothing.
#   bench/loadgen.sh [BUILD_DIR]     env: JOBS=1000 CLIENTS=16 WORKERS=2 DISPATCH_SAMPLES=20
#                                         SETTLE_SECONDS=10 KEEP=1 (keep the temporary folder)
#                                         RATE=0 (submits/s over all clients; 0 = closed loop)
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
JOBS=${JOBS:-1000}
CLIENTS=${CLIENTS:-16}
WORKERS=${WORKERS:-2}
DISPATCH_SAMPLES=${DISPATCH_SAMPLES:-20}
SETTLE_SECONDS=${SETTLE_SECONDS:-10}
RATE=${RATE:-0}
SRC=$(cd "$(dirname "$0")/.." && pwd)

ENGINE=$BUILD/engine/turbovid-engine
SCHEDULER=$BUILD/scheduler/turbovid-scheduler
WORKER=$BUILD/worker/turbovid-worker
LOADGEN=$BUILD/bench/turbovid-loadgen
for b in "$ENGINE" "$SCHEDULER" "$WORKER" "$LOADGEN"; do
  [[ -x $b ]] || { echo "missing $b (build it: ninja -C $BUILD tv_e2e_deps turbovid-loadgen)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/turbovid-loadgen-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_ready() {  # port pid name
  for _ in $(seq 600); do
    kill -0 "$2" 2>/dev/null || { echo "$3 exited; log:" >&2; tail -20 "$WORK/$3.log" >&2; exit 1; }
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    sleep 0.2
  done
  echo "$3 not ready" >&2; exit 1
}

"$ENGINE" make-tiny-checkpoint --kind t2v --out "$WORK/tiny-t2v" >"$WORK/make-tiny.log" 2>&1
GRPC_PORT=$(free_port)
HTTP_PORT=$(free_port)
ADDRESS=127.0.0.1:$GRPC_PORT
"$SCHEDULER" --config "$SRC/configs/scheduler.yaml" --models "$SRC/configs/models.yaml" \
  --listen "$ADDRESS" --http-address 127.0.0.1 --http-port "$HTTP_PORT" \
  --auth-mode off --api-http-port -1 \
  --db "$WORK/jobs.db" --artifacts "$WORK/artifacts" >"$WORK/scheduler.log" 2>&1 &
PIDS+=($!)
wait_ready "$HTTP_PORT" "$!" scheduler
for i in $(seq 0 $((WORKERS - 1))); do
  port=$(free_port)
  OMP_NUM_THREADS=1 "$WORKER" --worker-id "bench-w$i" --scheduler "$ADDRESS" --backend cpu \
    --node-class cpu --http-address 127.0.0.1 --http-port "$port" \
    --model "tiny-t2v:turbo=$WORK/tiny-t2v" >"$WORK/worker$i.log" 2>&1 &
  PIDS+=($!)
  wait_ready "$port" "$!" "worker$i"
done

echo "scheduler $ADDRESS, $WORKERS CPU workers, $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
"$LOADGEN" --scheduler "$ADDRESS" --model tiny-t2v --jobs "$JOBS" --concurrency "$CLIENTS" \
  --dispatch-samples "$DISPATCH_SAMPLES" --settle-seconds "$SETTLE_SECONDS" --rate "$RATE"
echo "scheduler metrics (dispatch / submit histograms):"
curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep -E '^turbovid_(dispatch_latency|submit_latency)_seconds_(sum|count)' || true
