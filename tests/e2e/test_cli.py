"""The CLI a user reaches for, against a real scheduler and CPU worker: --help on stdout (exit 0),
`models` and `workers` (what each worker holds and serves, by node class), `download JOB [-o
FILE]`; a job for a variant no registered worker serves says so (status, watch, the
turbovid_queue_unservable_oldest_age_seconds gauge) and fails after
--unservable-job-timeout-seconds; a worker listing a model outside the catalog is refused; I2V
jobs report the size they are rendered at; `turbovid generate` survives a kill -9 and restart of
the scheduler in the middle of its job."""
import json
import os
import subprocess
import time

import e2e_case
import harness

UNSERVABLE_TIMEOUT = 4


class CliTest(e2e_case.ClusterCase):
    NAME = "cli"
    WORKERS = 1
    SCHEDULER_ARGS = ("--unservable-job-timeout-seconds", str(UNSERVABLE_TIMEOUT))

    def run_cli(self, *args):
        return subprocess.run([harness.binary("turbovid")] + list(args), capture_output=True,
                              text=True, timeout=60)

    def test_help_goes_to_stdout(self):
        for args in (["--help"], ["help"], ["generate", "--help"], ["download", "-h"]):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("usage: turbovid", r.stdout)
            self.assertIn("download JOB_ID", r.stdout)
            self.assertEqual(r.stderr, "")
        r = self.run_cli()
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: turbovid", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_models_and_workers(self):
        c = self.cluster
        r = c.cli("models", check=True)
        line = next(l for l in r.stdout.splitlines() if l.startswith("tiny-t2v ") and "turbo*" in l)
        self.assertIn("1 (1)", line)
        self.assertIn("T2V", line)
        models = json.loads(c.cli("models", "--json", check=True).stdout)["models"]
        tiny = next(m for m in models if m["model_id"] == "tiny-t2v")
        variants = {v["variant"]: v for v in tiny["variants"]}
        self.assertEqual(variants["turbo"]["workers"], 1)
        self.assertNotIn("workers", variants["original"])  # proto3 JSON leaves out 0
        self.assertIn("cpu", variants["turbo"]["node_classes"])

        r = c.cli("workers", check=True)
        self.assertIn("node class cpu: 1 worker", r.stdout)
        self.assertIn("w0", r.stdout)
        self.assertIn("tiny-t2v:turbo (loaded)", r.stdout)
        workers = json.loads(c.cli("workers", "--json", check=True).stdout)["workers"]
        self.assertEqual([w["worker_id"] for w in workers], ["w0"])
        self.assertEqual(sorted((m["model_id"], m["variant"]) for m in workers[0]["models"]),
                         [("tiny-i2v", "turbo"), ("tiny-t2v", "turbo")])

    def test_download(self):
        c = self.cluster
        out = os.path.join(c.dir, "generated.mp4")
        r = c.cli("generate", "--model", harness.T2V_MODEL, "--prompt", "a boat", "--frames", "5",
                  "--width", "64", "--height", "64", "--steps", "2", "--out", out, "--json",
                  check=True)
        job_id = json.loads(r.stdout)["job_id"]
        copy = os.path.join(c.dir, "copy.mp4")
        r = c.cli("download", job_id, "-o", copy, check=True)
        self.assertIn(copy, r.stdout)
        with open(out, "rb") as a, open(copy, "rb") as b:
            self.assertEqual(a.read(), b.read())
        # Without -o: JOB_ID.mp4 in the current folder.
        r = subprocess.run([harness.binary("turbovid"), "download", job_id, "--scheduler",
                            c.address], capture_output=True, text=True, timeout=60, cwd=c.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(harness.ffprobe(os.path.join(c.dir, f"{job_id}.mp4"))[1:], (64, 64, 5))
        r = c.cli("download", "jffffffffffffffff")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        r = c.cli("delete", job_id, check=True)
        self.assertIn("deleted", r.stdout)
        self.assertIn("NOT_FOUND", c.cli("status", job_id).stderr)

    def test_unservable_job_says_so_and_fails(self):
        c = self.cluster
        r = c.cli("generate", "--model", harness.T2V_MODEL, "--variant", "original", "--prompt",
                  "nobody serves this", "--frames", "5", "--width", "64", "--height", "64",
                  "--no-wait", "--json", check=True)
        job_id = json.loads(r.stdout)["job_id"]
        status = json.loads(c.cli("status", job_id, "--json", check=True).stdout)
        self.assertEqual(status["state"], "JOB_STATE_QUEUED")
        self.assertIn("no registered worker serves tiny-t2v variant original",
                      status["status_message"])
        self.assertIn("node classes that can run it: cpu", status["status_message"])
        gauge = harness.metric_values(c.metrics(c.http_port),
                                      "turbovid_queue_unservable_oldest_age_seconds")
        self.assertIn(('{model="tiny-t2v",variant="original"}', gauge[0][1]), gauge)
        self.assertGreaterEqual(gauge[0][1], 0)
        start = time.monotonic()
        r = c.cli("watch", job_id)  # prints the message while it waits, ends when it fails
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no registered worker serves", r.stderr)
        self.assertLess(time.monotonic() - start, UNSERVABLE_TIMEOUT + 10)
        final = json.loads(c.cli("status", job_id, "--json", check=True).stdout)
        self.assertEqual(final["state"], "JOB_STATE_FAILED")
        self.assertIn("unservable_job_timeout_seconds", final["error"])
        gauge = dict(harness.metric_values(c.metrics(c.http_port),
                                           "turbovid_queue_unservable_oldest_age_seconds"))
        self.assertEqual(gauge['{model="tiny-t2v",variant="original"}'], 0)

    def test_worker_with_an_unknown_model_is_refused(self):
        c = self.cluster
        bad = os.path.join(harness.MODELS_DIR, "tiny-t2v")
        c.worker_models["bad"] = ["--model", f"no-such-model:turbo={bad}"]
        proc = c.start_worker("bad", wait=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(proc.log_path, errors="replace") as f:
                log = f.read()
            if "refused this worker" in log:
                break
            time.sleep(0.2)
        self.assertIn("register.models[0].model_id: 'no-such-model' is not in the scheduler's "
                      "model catalog", log)
        workers = json.loads(c.cli("workers", "--json", check=True).stdout)["workers"]
        self.assertEqual([w["worker_id"] for w in workers], ["w0"])
        proc.stop()
        del c.workers["bad"]

    def test_i2v_reports_the_size_it_renders(self):
        c = self.cluster
        png = os.path.join(c.dir, "wide.png")
        with open(png, "wb") as f:
            f.write(harness.make_png(128, 64))  # 2:1
        out = os.path.join(c.dir, "i2v.mp4")
        r = c.cli("generate", "--model", harness.I2V_MODEL, "--prompt", "a wide lake", "--image",
                  png, "--frames", "5", "--width", "64", "--height", "64", "--out", out, "--json",
                  check=True)
        job = json.loads(r.stdout)
        # Area 64x64 in a 2:1 aspect: h = round16(sqrt(4096 / 2)) = 48, w = round16(sqrt(8192)) = 96.
        self.assertEqual((job["width_pixels"], job["height_pixels"]), (96, 48))
        self.assertEqual(harness.ffprobe(out)[1:], (96, 48, 5))


class GenerateAcrossRestartTest(e2e_case.ClusterCase):
    NAME = "cli-restart"
    WORKERS = 1

    def test_generate_survives_a_scheduler_restart(self):
        c = self.cluster
        out = os.path.join(c.dir, "restart.mp4")
        m = e2e_case.LONG
        argv = [harness.binary("turbovid"), "generate", "--scheduler", c.address, "--model",
                harness.T2V_MODEL, "--prompt", "a long job", "--frames", str(m["frames"]),
                "--width", str(m["width"]), "--height", str(m["height"]), "--steps",
                str(m["steps"]), "--seed", "5", "--out", out, "--json"]
        cli = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            client = c.client()
            deadline = time.monotonic() + 60
            job = None
            while time.monotonic() < deadline and job is None:
                listed = client.list(model=harness.T2V_MODEL)
                job = listed[0] if listed else None
                time.sleep(0.05)
            self.assertIsNotNone(job, "the CLI did not submit")
            self.wait_for(client, job.job_id, self.denoising(client))
            c.scheduler.kill9()
            time.sleep(1.0)  # the CLI sees the stream break and retries while it is down
            c.start_scheduler()
            stdout, stderr = cli.communicate(timeout=300)
        finally:
            if cli.poll() is None:
                cli.kill()
        self.assertEqual(cli.returncode, 0, stderr)
        final = json.loads(stdout)
        self.assertEqual(final["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(final["job_id"], job.job_id)
        self.assertGreaterEqual(final["attempts"], 2)  # the restart requeued it
        self.assertEqual(harness.ffprobe(out)[1:], (m["width"], m["height"], m["frames"]))


if __name__ == "__main__":
    e2e_case.main()
