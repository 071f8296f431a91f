"""Quotas per tenant with GPU-seconds per day, and retention of finished jobs, end to end: a real
scheduler with API keys (tenants alice and bob), a real CPU worker.

- alice's quota (quotas.tenants.alice in a scheduler.yaml) allows almost no GPU time: after one
  job her next submit is RESOURCE_EXHAUSTED (HTTP 429) with "gpu_seconds_per_day" and a retry
  after, also after a scheduler restart (the ledger is rebuilt from the job store); bob keeps the
  defaults. turbovid_tenant_gpu_seconds{tenant} shows the use.
- With retention.finished_job_ttl_seconds short, a finished job (row and video) disappears:
  GetJob NOT_FOUND, HTTP 404, the MP4 file gone, turbovid_jobs_expired_total counted; a running
  job older than the TTL is never expired.
"""
import json
import os
import time

import grpc

import e2e_case
import harness
from e2e_case import MEDIUM, SHORT

http = harness.api_call


CONFIG = """\
quotas:
  tenants:
    alice: {gpu_seconds_per_day: 0.001}
"""


class QuotasRetentionTest(e2e_case.ClusterCase):
    NAME = "quotas-retention"

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        config = os.path.join(harness.tempfile.gettempdir(), f"tv-e2e-quotas-{os.getpid()}.yaml")
        with open(config, "w") as f:
            f.write(CONFIG)
        cls.config = config
        cls.cluster = harness.Cluster(cls.NAME, workers=1, tenants=["alice", "bob"],
                                      scheduler_args=["--config", config])

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        os.remove(cls.config)

    def restart(self, extra=()):
        c = self.cluster
        c.scheduler.stop()
        c.scheduler_args += list(extra)
        c.start_scheduler()

    def refused(self, client):
        with self.assertRaises(grpc.RpcError) as ctx:
            client.submit(client.request(harness.T2V_MODEL, "over budget", **SHORT))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        return ctx.exception.details()

    def test_1_gpu_seconds_per_day(self):
        c = self.cluster
        alice, bob = c.client(c.keys["alice"]), c.client(c.keys["bob"])
        job = alice.submit(alice.request(harness.T2V_MODEL, "alice's one", **SHORT))
        self.assertEqual(alice.state_name(alice.wait(job.job_id, timeout=180)),
                         "JOB_STATE_SUCCEEDED")
        details = self.refused(alice)
        self.assertIn("tenant 'alice'", details)
        self.assertIn("gpu_seconds_per_day is 0.001", details)
        self.assertIn("retry after 86", details)  # about 24 h: her only job frees it
        request = json.dumps({"model_id": harness.T2V_MODEL, "prompt": "over http",
                              "num_frames": 5, "num_steps": 2,
                              "size": {"width_pixels": 64, "height_pixels": 64}})
        headers = {}
        status, body = http(c.api_port, "/turbovid/v1/jobs", "POST", request,
                            key=c.keys["alice"], headers_out=headers)
        self.assertEqual(status, 429, body)
        self.assertIn("gpu_seconds_per_day", json.loads(body)["message"])
        # Retry-After: the wait the refusal names, in whole seconds (about a day here).
        self.assertGreater(int(headers.get("Retry-After", "0")), 86000, headers)
        # bob has the defaults (no budget).
        other = bob.submit(bob.request(harness.T2V_MODEL, "bob's", **SHORT))
        self.assertEqual(bob.state_name(bob.wait(other.job_id, timeout=180)),
                         "JOB_STATE_SUCCEEDED")
        text = c.metrics(c.http_port)
        used = dict(harness.metric_values(text, "turbovid_tenant_gpu_seconds"))
        self.assertGreater(used.get('{tenant="alice"}', 0), 0)
        self.assertGreater(used.get('{tenant="bob"}', 0), 0)
        refusals = dict(harness.metric_values(text, "turbovid_quota_refusals_total"))
        self.assertEqual(refusals.get('{reason="gpu_seconds"}'), 2)
        # The budget survives a restart: it is rebuilt from the job store.
        self.restart()
        self.assertIn("gpu_seconds_per_day", self.refused(c.client(c.keys["alice"])))
        type(self).finished = [job.job_id, other.job_id]

    def test_2_retention(self):
        c = self.cluster
        ttl = 4
        self.restart(["--finished-job-ttl-seconds", str(ttl), "--retention-sweep-seconds", "0.5"])
        bob = c.client(c.keys["bob"])
        # A job running for longer than the TTL is not expired.
        running = bob.submit(bob.request(harness.T2V_MODEL, "long", **MEDIUM))
        self.wait_for(bob, running.job_id, lambda j: bob.state_name(j) == "JOB_STATE_RUNNING")
        # The jobs finished in test 1 are older than the TTL: gone, rows and videos.
        deadline = time.monotonic() + 10
        for job_id in type(self).finished:
            while True:
                try:
                    c.client(c.keys["admin"]).get(job_id)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
                    break
                self.assertLess(time.monotonic(), deadline, f"{job_id} not expired")
                time.sleep(0.2)
            self.assertFalse(os.path.exists(os.path.join(c.dir, "artifacts", f"{job_id}.mp4")))
        status, _ = http(c.api_port, f"/turbovid/v1/jobs/{type(self).finished[1]}",
                         key=c.keys["bob"])
        self.assertEqual(status, 404)
        final = bob.wait(running.job_id, timeout=180)
        self.assertEqual(bob.state_name(final), "JOB_STATE_SUCCEEDED")
        # Finished just now: still there (its TTL counts from the finish, not from the submit,
        # which the sweeps above, 0.5 s apart, saw more than once while it ran), then gone.
        self.assertGreater(len(bob.download(running.job_id)), 0)
        video = os.path.join(c.dir, "artifacts", f"{running.job_id}.mp4")
        deadline = time.monotonic() + ttl + 10
        while os.path.exists(video):
            self.assertLess(time.monotonic(), deadline, "finished job never expired")
            time.sleep(0.2)
        with self.assertRaises(grpc.RpcError) as ctx:
            bob.get(running.job_id)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)
        status, _ = http(c.api_port, f"/turbovid/v1/jobs/{running.job_id}/video",
                         key=c.keys["bob"])
        self.assertEqual(status, 404)
        text = c.metrics(c.http_port)
        expired = dict(harness.metric_values(text, "turbovid_jobs_expired_total"))
        self.assertGreaterEqual(expired.get('{state="succeeded"}', 0), 1)


if __name__ == "__main__":
    e2e_case.main()
