"""Real-process harness for the e2e tests: a turbovid-scheduler and CPU turbovid-workers on
loopback (free ports, SQLite and artifacts in a temporary folder), plus the C++ CLI, the Python
client, ffprobe, `turbovid probe`, promtool and Prometheus helpers. No mocks: everything is the
built binaries.

Environment (set by tests/e2e/CMakeLists.txt): TV_BUILD_DIR, TV_E2E_MODELS (folder with the tiny
checkpoints tiny-t2v/ and tiny-i2v/), TV_E2E_KEEP=1 keeps the temporary folder.
"""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD_DIR = os.environ.get("TV_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
CATALOG = os.path.join(SOURCE_DIR, "configs/models.yaml")
MODELS_DIR = os.environ.get("TV_E2E_MODELS", os.path.join(BUILD_DIR, "tests/e2e/models"))
sys.path.insert(0, os.path.join(BUILD_DIR, "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tv_client  # noqa: E402

T2V_MODEL = "tiny-t2v"
I2V_MODEL = "tiny-i2v"
VARIANT = "turbo"


def binary(name):
    for sub in ("scheduler", "worker", "tools", "engine", "bench"):
        p = os.path.join(BUILD_DIR, sub, name)
        if os.access(p, os.X_OK):
            return p
    raise FileNotFoundError(f"{name} not built under {BUILD_DIR}")


_handed_out = set()


def free_port():
    """A loopback port that is free now and that this process has not handed out before: two
    calls in a row may otherwise get the same port back from the kernel (a scheduler once got its
    HTTP port as its gRPC port and could not listen)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _die_with_parent():
    # The child gets SIGKILL if the test process dies (ctest timeout), so nothing leaks.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def http_get(port, path, timeout=2.0, context=None):
    """context: an ssl.SSLContext for HTTPS, None for plain HTTP."""
    scheme = "https" if context is not None else "http"
    try:
        with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}{path}", timeout=timeout,
                                    context=context) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, ""


def api_call(port, path, method="GET", body=None, key=None, headers_out=None):
    """(status, text) of one HTTP request to a loopback job API: `body` a JSON string, `key` an
    API key sent as a Bearer token; error statuses are returned, not raised. `headers_out`, a
    dict, receives the answer's headers."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=body.encode() if body is not None else None)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            if headers_out is not None:
                headers_out.update(r.headers.items())
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        if headers_out is not None:
            headers_out.update(e.headers.items())
        return e.code, e.read().decode(errors="replace")


class Proc:
    def __init__(self, name, argv, log_path, env=None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      preexec_fn=_die_with_parent, env=env)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def kill9(self):
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, grace=10.0):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(10)

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


def model_flags(model, folder, lazy=False):
    """The worker flags serving `model` (variant turbo) from `folder`: --model loads it at
    startup, --model-lazy when its first task needs it."""
    return ["--model-lazy" if lazy else "--model", f"{model}:{VARIANT}={folder}"]


class Cluster:
    """One scheduler and `workers` CPU workers serving both tiny models (preloaded), unless
    `worker_models` maps a worker id to its own model flags (see model_flags)."""

    def __init__(self, name, workers=2, scheduler_args=(), worker_args=(), worker_models=None,
                 tenants=None, http_context=None):
        """tenants: None = the scheduler runs with --auth-mode off; else a list of tenant names,
        each given an API key (self.keys[tenant]; self.keys["admin"] is an admin key of tenant
        "ops") and the workers a shared token (self.worker_token) from self.worker_tokens_file."""
        self.dir = tempfile.mkdtemp(prefix=f"tv-e2e-{name}-")
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.api_port = free_port()
        self.keys = {}
        self.worker_token = None
        self.tenants = tenants
        self.http_context = http_context  # ssl.SSLContext when the scheduler's HTTP is TLS
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.scheduler_args = list(scheduler_args)
        self.worker_args = list(worker_args)
        self.worker_models = dict(worker_models or {})
        self.scheduler = None
        self.workers = {}
        self.worker_ports = {}
        self.worker_grpc_ports = {}
        self._clients = []
        if tenants is not None:
            self._make_credentials(tenants)
        self.start_scheduler()
        for i in range(workers):
            self.start_worker(f"w{i}")
        for wid in list(self.workers):
            self.wait_ready(self.workers[wid], self.worker_ports[wid], timeout=240)

    def _make_credentials(self, tenants):
        """Keys with `turbovid-scheduler keys add` (the operator's way); the worker token file
        written by hand from `token-hash`."""
        self.keys_file = os.path.join(self.dir, "keys.yaml")
        for tenant in tenants:
            self.keys[tenant] = self.add_key(f"{tenant}-key", tenant)
        self.keys["admin"] = self.add_key("ops-admin", "ops", admin=True)
        self.worker_token = "wt-" + os.urandom(16).hex()
        self.worker_tokens_file = os.path.join(self.dir, "worker-tokens.yaml")
        self.write_worker_tokens([("pool", self.worker_token, [])])

    def add_key(self, name, tenant, admin=False):
        argv = [binary("turbovid-scheduler"), "keys", "add", "--file", self.keys_file,
                "--name", name, "--tenant", tenant] + (["--admin"] if admin else [])
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
        return r.stdout.strip()

    def write_worker_tokens(self, tokens):
        """tokens: [(name, secret, [allowed worker ids])]."""
        lines = ["tokens:"]
        for name, secret, ids in tokens:
            digest = subprocess.run([binary("turbovid-scheduler"), "token-hash"], input=secret,
                                    capture_output=True, text=True, check=True).stdout.strip()
            lines += [f"  - name: {name}", f"    sha256: {digest}",
                      f"    worker_ids: [{', '.join(ids)}]"]
        tmp = self.worker_tokens_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.worker_tokens_file)

    # --- processes -------------------------------------------------------------------------
    def scheduler_argv(self):
        if self.tenants is None:
            auth = ["--auth-mode", "off"]
        else:
            auth = ["--auth-mode", "required", "--api-keys-file", self.keys_file,
                    "--worker-tokens-file", self.worker_tokens_file]
        return [binary("turbovid-scheduler"), "--listen", self.address,
                "--http-address", "127.0.0.1", "--http-port", str(self.http_port),
                "--api-http-address", "127.0.0.1", "--api-http-port", str(self.api_port),
                "--db", os.path.join(self.dir, "jobs.db"),
                "--artifacts", os.path.join(self.dir, "artifacts"),
                "--models", CATALOG] + auth + self.scheduler_args

    def start_scheduler(self, wait=True):
        self.scheduler = Proc("scheduler", self.scheduler_argv(),
                              os.path.join(self.dir, "scheduler.log"))
        if wait:
            self.wait_ready(self.scheduler, self.http_port, timeout=60,
                            context=self.http_context)
        return self.scheduler

    def start_worker(self, worker_id, wait=False, extra_args=()):
        port = self.worker_ports.get(worker_id) or free_port()
        self.worker_ports[worker_id] = port
        grpc_port = self.worker_grpc_ports.get(worker_id) or free_port()
        self.worker_grpc_ports[worker_id] = grpc_port
        models = self.worker_models.get(worker_id) or (
            model_flags(T2V_MODEL, os.path.join(MODELS_DIR, "tiny-t2v"))
            + model_flags(I2V_MODEL, os.path.join(MODELS_DIR, "tiny-i2v")))
        argv = [binary("turbovid-worker"), "--worker-id", worker_id, "--scheduler", self.address,
                "--backend", "cpu", "--node-class", "cpu", "--http-address", "127.0.0.1",
                "--http-port", str(port), "--grpc-listen", f"127.0.0.1:{grpc_port}",
                "--heartbeat-seconds", "0.5"] + models + self.worker_args + list(extra_args)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        if self.worker_token:
            env["TURBOVID_WORKER_TOKEN"] = self.worker_token
        self.workers[worker_id] = Proc(worker_id, argv,
                                       os.path.join(self.dir, f"worker-{worker_id}.log"), env)
        if wait:
            self.wait_ready(self.workers[worker_id], port, timeout=240)
        return self.workers[worker_id]

    def wait_ready(self, proc, port, timeout, context=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
            if http_get(port, "/readyz", context=context)[0] == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{proc.name} not ready after {timeout}s:\n{proc.tail()}")

    def close(self, failed=False):
        for c in self._clients:
            c.close()
        procs = list(self.workers.values()) + ([self.scheduler] if self.scheduler else [])
        for p in procs:
            p.stop(grace=10)
        if failed or os.environ.get("TV_E2E_KEEP"):
            for p in procs:
                print(f"--- {p.name} log ({p.log_path}) ---\n{p.tail(60)}", file=sys.stderr)
        if not os.environ.get("TV_E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- clients ---------------------------------------------------------------------------
    def client(self, api_key=None):
        c = tv_client.VideoClient(self.address, api_key=api_key or "")
        self._clients.append(c)
        return c

    def cli(self, *args, timeout=300, check=False, env=None):
        """Runs the C++ `turbovid` CLI; returns CompletedProcess (text)."""
        argv = [binary("turbovid")] + [args[0], "--scheduler", self.address] + list(args[1:])
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        if check and r.returncode != 0:
            raise AssertionError(f"{argv} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def metrics(self, port):
        status, body = http_get(port, "/metrics")
        assert status == 200, f"/metrics on {port}: {status}"
        return body


def ffprobe(path):
    """(codec, width, height, frames) of the first video stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames", "-of", "json", path],
        capture_output=True, text=True, timeout=60, check=True).stdout
    s = json.loads(out)["streams"][0]
    return s["codec_name"], int(s["width"]), int(s["height"]), int(s["nb_read_frames"])


def probe(path):
    """(codec, width, height, frames) of the MP4 as `turbovid probe --json` reads it: our own box
    reader (engine/video/mp4_probe.h), which needs no FFmpeg."""
    out = subprocess.run([binary("turbovid"), "probe", "--json", path], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    p = json.loads(out)
    return p["codec"], int(p["width"]), int(p["height"]), int(p["frames"])


def metric_values(text, name):
    """[(labels-string, value)] for the samples of one metric name in exposition text."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, _, value = line.rpartition(" ")
        if key == name or key.startswith(name + "{"):
            out.append((key[len(name):], float(value)))
    return out


def make_png(width=64, height=64):
    """An RGB gradient PNG (zlib-compressed, unlike the CLI's stored-block writer)."""
    import struct
    import zlib
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            row += bytes(((x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), 96))
        rows.append(bytes(row))

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + chunk(b"IEND", b""))
