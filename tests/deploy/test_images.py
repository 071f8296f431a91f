"""The container images, built and run the way CI can without any registry: the scheduler and CPU
worker images are built with buildah from a Debian 12 base made by debootstrap and imported
(deploy/docker/make-base.sh, cached between runs), reusing the binaries of this build tree
(BINARIES=staged: nothing is compiled again). Checks: non-root user, entrypoints, licences of the
linked packages, size; then the scheduler and the worker run from their images (`buildah run
--isolation chroot`, host network) and the host's CLI submits a tiny job whose MP4 comes back.

A CUDA build tree (TV_BUILD_CUDA=ON) makes the worker image a CUDA worker (the same Containerfile,
stage.sh adding the cuBLASLt the binary opens; NCCL left out here to keep the copy small): inside
it the loader resolves every library of the binary and of cuBLASLt, and cuBLASLt is in the
loader's cache under the name the worker opens.

Environment: TV_BUILD_DIR, TV_E2E_MODELS (tests/e2e fixture), TV_IMAGE_CACHE (base tarballs,
default /var/cache/turbovid/images), TV_E2E_KEEP=1 keeps the work folder and containers.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../e2e"))
import harness  # noqa: E402

DOCKER_DIR = os.path.join(harness.SOURCE_DIR, "deploy/docker")
TAG = "test"
IMAGES = {"scheduler": f"localhost/turbovid-scheduler:{TAG}",
          "worker": f"localhost/turbovid-worker-cpu:{TAG}"}
MAX_IMAGE_BYTES = {"scheduler": 250 << 20, "worker": 450 << 20}


def cuda_build():
    try:
        with open(os.path.join(harness.BUILD_DIR, "CMakeCache.txt")) as f:
            return "TV_BUILD_CUDA:BOOL=ON\n" in f.read()
    except OSError:
        return False


def run(argv, timeout=900, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{argv} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def descendants(pid):
    """Every process below `pid` (from /proc), deepest last."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class ImagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.failed = False
        cls.times = {}
        cls.dir = tempfile.mkdtemp(prefix="tv-images-")
        cls.containers = []
        cls.procs = []
        t0 = time.monotonic()
        for name in ("scheduler", "worker"):
            ctx = os.path.join(cls.dir, f"ctx-{name}")
            run([os.path.join(DOCKER_DIR, "stage.sh"), harness.BUILD_DIR, ctx, name],
                env={**os.environ, "TV_STAGE_NCCL": "0"})
            cls.staged_libs = {} if name != "worker" else {
                f: os.path.getsize(os.path.join(ctx, "lib", f))
                for f in os.listdir(os.path.join(ctx, "lib"))}
            t = time.monotonic()
            base = run([os.path.join(DOCKER_DIR, "make-base.sh"), name,
                        os.path.join(ctx, "runtime-packages.txt")], timeout=1500).strip()
            cls.times[f"base-{name}"] = time.monotonic() - t
            t = time.monotonic()
            run(["buildah", "build", "--isolation", "chroot", "--quiet",
                 "-f", os.path.join(DOCKER_DIR, f"{name}.Containerfile"),
                 "--build-arg", f"BASE={base}", "--build-arg", "BINARIES=staged",
                 "-t", IMAGES[name], ctx])
            cls.times[f"build-{name}"] = time.monotonic() - t
        cls.times["total-build"] = time.monotonic() - t0
        print(f"image times (s): {json.dumps({k: round(v, 1) for k, v in cls.times.items()})}",
              file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            cls.stop(p)
        keep = os.environ.get("TV_E2E_KEEP")
        if cls.failed or keep:
            for p in cls.procs:
                print(f"--- {p.name} log ---\n{p.tail(60)}", file=sys.stderr)
        if not keep:
            for c in cls.containers:
                subprocess.run(["buildah", "rm", c], capture_output=True, timeout=120)
            subprocess.run(["buildah", "rmi", "--prune"], capture_output=True, timeout=300)
            shutil.rmtree(cls.dir, ignore_errors=True)

    def run(self, result=None):
        result = super().run(result)
        if result and (result.failures or result.errors):
            type(self).failed = True
        return result

    # --- helpers ----------------------------------------------------------------------------
    @classmethod
    def container(cls, image):
        c = run(["buildah", "from", "--quiet", image]).strip()
        cls.containers.append(c)
        return c

    @classmethod
    def start(cls, name, image, argv, mounts=()):
        """Runs argv in a fresh container of `image` as the image's user, on the host network."""
        c = cls.container(image)
        cmd = ["buildah", "run", "--isolation", "chroot"]
        for src, dst in mounts:
            cmd += ["-v", f"{src}:{dst}:ro"]
        p = harness.Proc(name, cmd + [c, "--"] + argv, os.path.join(cls.dir, f"{name}.log"))
        cls.procs.append(p)
        return p

    @staticmethod
    def stop(proc):
        """SIGTERM to the service inside (buildah run does not forward signals), then waits."""
        if not proc.alive():
            return
        for pid in descendants(proc.pid):
            if comm(pid).startswith("turbovid"):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        try:
            proc.popen.wait(30)
        except subprocess.TimeoutExpired:
            for pid in reversed(descendants(proc.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.popen.kill()
            proc.popen.wait(10)

    def inspect(self, image):
        return json.loads(run(["buildah", "inspect", "--type", "image", image]))

    # --- tests ------------------------------------------------------------------------------
    def test_image_config(self):
        for name, image in IMAGES.items():
            with self.subTest(image=name):
                config = self.inspect(image)["OCIv1"]["config"]
                self.assertEqual(config["User"], "10001:10001")
                self.assertEqual(config["Entrypoint"], [f"/usr/local/bin/turbovid-{name}"])
                size = int(run(["podman", "image", "inspect", "--format", "{{.Size}}", image]))
                print(f"{name} image: {size / 2**20:.0f} MiB", file=sys.stderr)
                extra = sum(self.staged_libs.values()) if name == "worker" else 0
                self.assertLess(size, MAX_IMAGE_BYTES[name] + extra)

    def test_binaries_licences_and_user_inside(self):
        want = {"scheduler": ["libgrpc++1.51", "libsqlite3-0", "libc6", "libstdc++6"],
                "worker": ["libgrpc++1.51", "libavcodec59", "libx264-164", "libc6"]}
        for name, image in IMAGES.items():
            with self.subTest(image=name):
                c = self.container(image)
                out = run(["buildah", "run", "--isolation", "chroot", c, "--", "sh", "-c",
                           f"id -u; turbovid-{name} --help >/dev/null 2>&1; echo help=$?; "
                           "cat /usr/share/licenses/turbovid/PACKAGES; "
                           "ls /usr/local/bin; test -w /var/lib/turbovid && echo writable"])
                lines = out.split()
                self.assertEqual(lines[0], "10001")
                self.assertIn("help=0", lines)
                self.assertIn("writable", lines)
                for pkg in want[name]:
                    self.assertIn(f"{pkg}.copyright", lines, out)
                # Nothing but the shipped binaries, and no compiler or -dev package.
                self.assertIn(f"turbovid-{name}", lines)
                dpkg = run(["buildah", "run", "--isolation", "chroot", c, "--", "dpkg-query",
                            "-W", "-f", "${Package}\n"]).split()
                self.assertFalse([p for p in dpkg if p.endswith("-dev") or p in ("gcc", "g++")],
                                 dpkg)

    def test_cuda_worker_libraries(self):
        if not cuda_build():
            self.assertEqual(self.staged_libs, {})  # a CPU worker ships no extra library
            self.skipTest("not a CUDA build (TV_BUILD_CUDA=OFF)")
        libs = sorted(self.staged_libs)
        self.assertEqual([f.split(".so.")[0] for f in libs], ["libcublasLt"], libs)
        c = self.container(IMAGES["worker"])
        out = run(["buildah", "run", "--isolation", "chroot", c, "--", "sh", "-c",
                   "ldd /usr/local/bin/turbovid-worker /usr/local/lib/libcublasLt.so.*; "
                   "echo ---; ldconfig -p; echo ---; "
                   "turbovid-worker --help >/dev/null 2>&1; echo help=$?; "
                   "cat /usr/share/licenses/turbovid/PACKAGES"])
        ldd, cache, rest = out.split("---\n")
        self.assertNotIn("not found", ldd)
        self.assertIn("/usr/local/lib/libcublasLt.so.", ldd)
        # The name the worker dlopens (libcublasLt.so.<CUDA major>) is in the loader's cache.
        self.assertRegex(cache, rf"\s{libs[0]} \(.*=> /usr/local/lib/{libs[0]}\n")
        self.assertIn("help=0", rest)
        self.assertTrue([f for f in rest.split() if f.startswith(libs[0] + ".")], rest)

    def test_loopback_smoke_job(self):
        grpc_port, http_port, worker_port = (harness.free_port() for _ in range(3))
        etc = os.path.join(self.dir, "etc")
        os.makedirs(etc, exist_ok=True)
        shutil.copy(harness.CATALOG, os.path.join(etc, "models.yaml"))
        scheduler = self.start("scheduler", IMAGES["scheduler"], [
            "turbovid-scheduler", "--listen", f"127.0.0.1:{grpc_port}", "--http-address",
            "127.0.0.1", "--http-port", str(http_port), "--db", "/var/lib/turbovid/jobs.db",
            "--artifacts", "/var/lib/turbovid/artifacts", "--models",
            "/etc/turbovid/models.yaml", "--auth-mode", "off", "--api-http-port", "-1"],
            mounts=[(etc, "/etc/turbovid")])
        self.wait_ready(scheduler, http_port, 120)
        worker = self.start("worker", IMAGES["worker"], [
            "turbovid-worker", "--worker-id", "image-w0", "--scheduler",
            f"127.0.0.1:{grpc_port}", "--backend", "cpu", "--node-class", "cpu",
            "--http-address", "127.0.0.1", "--http-port", str(worker_port), "--grpc-listen",
            "127.0.0.1:0", "--model", f"{harness.T2V_MODEL}:turbo=/models/tiny-t2v"],
            mounts=[(harness.MODELS_DIR, "/models")])
        self.wait_ready(worker, worker_port, 240)
        out = os.path.join(self.dir, "smoke.mp4")
        r = subprocess.run([harness.binary("turbovid"), "generate", "--scheduler",
                            f"127.0.0.1:{grpc_port}", "--model", harness.T2V_MODEL, "--prompt",
                            "an image smoke test", "--frames", "5", "--width", "64", "--height",
                            "64", "--steps", "2", "--out", out, "--json", "--timeout", "300"],
                           capture_output=True, text=True, timeout=360)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(harness.ffprobe(out), ("h264", 64, 64, 5))
        # The CLI inside the scheduler image reads the same job back.
        job_id = json.loads(r.stdout.strip().splitlines()[-1])["job_id"]
        c = self.container(IMAGES["scheduler"])
        status = run(["buildah", "run", "--isolation", "chroot", c, "--", "turbovid", "status",
                      job_id, "--scheduler", f"127.0.0.1:{grpc_port}", "--json"])
        self.assertIn("JOB_STATE_SUCCEEDED", status)
        metrics = harness.http_get(worker_port, "/metrics")[1]
        self.assertIn('turbovid_worker_tasks_total{model="tiny-t2v",variant="turbo",'
                      'node_class="cpu",result="succeeded"} 1', metrics)
        # SIGTERM drains and stops both cleanly.
        self.stop(worker)
        self.stop(scheduler)
        self.assertEqual(worker.popen.returncode, 0, worker.tail())
        self.assertEqual(scheduler.popen.returncode, 0, scheduler.tail())

    def wait_ready(self, proc, port, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assertTrue(proc.alive(), f"{proc.name} exited:\n{proc.tail()}")
            if harness.http_get(port, "/readyz")[0] == 200:
                return
            time.sleep(0.2)
        self.fail(f"{proc.name} not ready after {timeout}s:\n{proc.tail()}")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
