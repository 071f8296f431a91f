"""The e2e harness (tests/e2e/harness.py) with CUDA workers: one scheduler on loopback and
turbovid-workers on the GPU holding the models given.

Environment: TV_BUILD_DIR (the build with the service and the CUDA backend, scripts/build_bare.sh
--service on the GPU machine), TV_GPU_WORK (folder with the checkpoints), TV_GPU_NODE_CLASS (h100),
TV_E2E_KEEP=1 keeps the temporary folder.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../e2e"))

import harness  # noqa: E402

WORK = os.environ.get("TV_GPU_WORK", "/tmp/turbovid-gpu")
# A dry run of the test's logic on a machine without GPU: TV_GPU_BACKEND=cpu TV_GPU_T2V=tiny-t2v
# TV_GPU_T2V_SHAPE=64x64x5x2 (checkpoints made with turbovid-engine make-tiny-checkpoint).
BACKEND = os.environ.get("TV_GPU_BACKEND", "cuda")
T2V_MODEL = os.environ.get("TV_GPU_T2V", "wan2.1-t2v-1.3b")
T2V_SHAPE = dict(zip(("width", "height", "frames", "steps"),
                     map(int, os.environ.get("TV_GPU_T2V_SHAPE", "832x480x81x4").split("x"))))
I2V_MODEL = "tiny-i2v"
VARIANT = "turbo"
NODE_CLASS = os.environ.get("TV_GPU_NODE_CLASS", "h100")  # run.sh: h200 on an H200


class GpuCluster(harness.Cluster):
    """A scheduler and CUDA workers w0, w1, ... on device 0; `worker_models` lists each worker's
    model flags (harness.model_flags: preloaded or lazy)."""

    def __init__(self, name, worker_models, scheduler_args=(), worker_args=()):
        super().__init__(name, workers=len(worker_models), scheduler_args=scheduler_args,
                         worker_args=worker_args,
                         worker_models={f"w{i}": flags for i, flags in enumerate(worker_models)})

    def start_worker(self, worker_id, wait=False):
        port = self.worker_ports.get(worker_id) or harness.free_port()
        self.worker_ports[worker_id] = port
        grpc_port = self.worker_grpc_ports.get(worker_id) or harness.free_port()
        self.worker_grpc_ports[worker_id] = grpc_port
        argv = [harness.binary("turbovid-worker"), "--worker-id", worker_id,
                "--scheduler", self.address, "--backend", BACKEND, "--device", "0",
                "--node-class", NODE_CLASS if BACKEND == "cuda" else "cpu", "--http-address", "127.0.0.1", "--http-port", str(port),
                "--grpc-listen", f"127.0.0.1:{grpc_port}", "--heartbeat-seconds", "0.5"]
        argv += self.worker_models[worker_id] + self.worker_args
        self.workers[worker_id] = harness.Proc(
            worker_id, argv, os.path.join(self.dir, f"worker-{worker_id}.log"), dict(os.environ))
        if wait:
            self.wait_ready(self.workers[worker_id], port, timeout=600)
        return self.workers[worker_id]

