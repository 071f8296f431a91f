"""Two CPU workers holding models differently: w0 preloads tiny-t2v; w1 lists tiny-t2v lazy and a
tiny-i2v whose folder is missing. Jobs go to the warm w0 while it is idle; the first job w1 must
take loads the model (one LOADING_MODEL stage, one "loaded" log line), the next finds it warm; a
failed load fails only its job, naming the model and path, and w1 keeps serving."""
import os
import re
import time

import e2e_case
import harness
from e2e_case import LONG, SHORT

T2V_DIR = os.path.join(harness.MODELS_DIR, "tiny-t2v")
MISSING_DIR = os.path.join(harness.MODELS_DIR, "tiny-i2v-missing")
LOADED_T2V = f"loaded {harness.T2V_MODEL}:{harness.VARIANT} in "


class WarmTest(e2e_case.ClusterCase):
    NAME = "warm"
    WORKERS = 2
    WORKER_MODELS = {
        "w0": harness.model_flags(harness.T2V_MODEL, T2V_DIR),
        "w1": (harness.model_flags(harness.T2V_MODEL, T2V_DIR, lazy=True)
               + harness.model_flags(harness.I2V_MODEL, MISSING_DIR, lazy=True)),
    }

    def log(self, worker_id):
        with open(self.cluster.workers[worker_id].log_path, errors="replace") as f:
            return f.read()

    def loading_stages(self):
        """How many LOADING_MODEL stages the scheduler has seen end (its stage histogram)."""
        text = self.cluster.metrics(self.cluster.http_port)
        return sum(v for labels, v in
                   harness.metric_values(text, "turbovid_stage_duration_seconds_count")
                   if 'stage="loading_model"' in labels)

    def occupy_w0(self, client):
        """A long job on w0 (warm and idle, so it takes it) that keeps it busy for a while."""
        job = client.submit(client.request(harness.T2V_MODEL, "keep w0 busy", **LONG))
        # RUNNING, not ASSIGNED: an assignment can still bounce ("worker is busy") to w1.
        started = self.wait_for(client, job.job_id,
                                lambda j: client.state_name(j) == "JOB_STATE_RUNNING")
        self.assertEqual(started.worker_id, "w0")
        return job

    def run_on_w1(self, client, prompt):
        busy = self.occupy_w0(client)
        job = client.submit(client.request(harness.T2V_MODEL, prompt, **SHORT))
        done = client.wait(job.job_id, timeout=180)
        client.cancel(busy.job_id)
        client.wait(busy.job_id, timeout=120)
        # The job is CANCELLED as soon as the scheduler has the request; w0 stops at its next
        # step. Wait for w0 to say so, or the next occupy_w0 finds it still busy (its job then
        # bounces to w1 and w0 takes the short one).
        deadline = time.monotonic() + 60
        while not re.search(rf"task {busy.job_id} (cancelled|succeeded|failed)", self.log("w0")):
            self.assertLess(time.monotonic(), deadline, "w0 never finished the cancelled job")
            time.sleep(0.05)
        self.assertEqual(client.state_name(done), "JOB_STATE_SUCCEEDED", done.error)
        self.assertEqual(done.worker_id, "w1")
        return done

    def test_warm_worker_first_lazy_load_once(self):
        c = self.cluster
        client = c.client()
        self.assertIn(LOADED_T2V, self.log("w0"))
        self.assertNotIn(LOADED_T2V, self.log("w1"))  # lazy: nothing loaded at startup
        before = self.loading_stages()

        for i in range(2):  # both idle: the warm one takes it
            job = client.submit(client.request(harness.T2V_MODEL, f"idle {i}", **SHORT))
            done = client.wait(job.job_id, timeout=180)
            self.assertEqual(client.state_name(done), "JOB_STATE_SUCCEEDED", done.error)
            self.assertEqual(done.worker_id, "w0")
        self.assertNotIn(LOADED_T2V, self.log("w1"))

        # w0 busy: w1 must run it and loads the model first.
        self.run_on_w1(client, "first on w1")
        self.assertEqual(self.log("w1").count(LOADED_T2V), 1)
        self.assertEqual(self.loading_stages(), before + 1)
        # w1's next heartbeat (every 2 s by default, so it may come after the job ends) tells
        # the scheduler it holds the model now.
        pattern = re.compile(r"worker w1 models: .*tiny-t2v:turbo \(loaded\)")
        deadline = time.monotonic() + 30
        while True:
            with open(c.scheduler.log_path, errors="replace") as f:
                if pattern.search(f.read()):
                    break
            self.assertLess(time.monotonic(), deadline,
                            "no heartbeat from w1 reported tiny-t2v loaded within 30 s")
            time.sleep(0.1)

        # A lazy model whose folder is missing: that job fails naming model and path.
        job = client.submit(client.request(harness.I2V_MODEL, "no weights",
                                           image=harness.make_png(), **SHORT))
        failed = client.wait(job.job_id, timeout=180)
        self.assertEqual(client.state_name(failed), "JOB_STATE_FAILED")
        self.assertEqual(failed.worker_id, "w1")
        self.assertIn(f"{harness.I2V_MODEL}:{harness.VARIANT}", failed.error)
        self.assertIn(MISSING_DIR, failed.error)
        after_failure = self.loading_stages()

        # w1 still serves, from the model it holds: no second load.
        self.run_on_w1(client, "second on w1")
        self.assertEqual(self.log("w1").count(LOADED_T2V), 1)
        self.assertEqual(self.loading_stages(), after_failure)
        self.assertTrue(c.workers["w1"].alive())
        self.assertNotIn("evicting ", self.log("w1"))  # the budget (host RAM) holds both


if __name__ == "__main__":
    e2e_case.main()
