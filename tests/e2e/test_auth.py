"""Authentication and tenants, end to end (issue: rogue workers, client API keys, the job API off
the metrics port). Real scheduler and workers, keys made with `turbovid-scheduler keys add`.

- Workers: no token or a wrong token is refused (UNAUTHENTICATED) and never registers; a worker
  with another credential cannot take over a connected worker's id (ALREADY_EXISTS); a token
  bound to ids cannot register another id (PERMISSION_DENIED); the same credential replaces
  its own stale connection (a restart).
- Clients: no key / unknown key -> UNAUTHENTICATED naming the header; a tenant sees, watches,
  cancels, lists and downloads only its own jobs (NOT_FOUND for another's), client_request_id
  is per tenant, an admin key sees all; a revoked key stops working without a restart.
- HTTP: the job gateway answers on its own port with the same keys (401 / 404), and the ops port
  serves only /metrics, /healthz, /readyz.
"""
import json
import os
import subprocess
import time

import grpc

import e2e_case
import harness
from e2e_case import SHORT

http = harness.api_call


class AuthTest(e2e_case.ClusterCase):
    WORKERS = 1
    NAME = "auth"

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        # A submit quota loose enough for the other tests (a handful of submits each).
        cls.cluster = harness.Cluster(cls.NAME, workers=cls.WORKERS, tenants=["alice", "bob"],
                                      scheduler_args=["--quota-submits-per-second", "0.5",
                                                      "--quota-submit-burst", "20"])

    def code(self, fn):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn()
        return ctx.exception.code(), ctx.exception.details()

    def registered_workers(self):
        text = self.cluster.metrics(self.cluster.http_port)
        return sum(v for _, v in harness.metric_values(text, "turbovid_workers"))

    def wait_registered(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        while self.registered_workers() != n:
            self.assertLess(time.monotonic(), deadline, f"{n} workers never registered")
            time.sleep(0.1)

    def start_rogue(self, worker_id, token, name):
        """A real worker process with its own credentials; returns it (caller stops it)."""
        c = self.cluster
        argv = [harness.binary("turbovid-worker"), "--worker-id", worker_id,
                "--scheduler", c.address, "--backend", "cpu", "--node-class", "cpu",
                "--http-address", "127.0.0.1", "--http-port", str(harness.free_port()),
                "--grpc-listen", "", "--heartbeat-seconds", "0.5"] + harness.model_flags(
                    harness.T2V_MODEL, os.path.join(harness.MODELS_DIR, "tiny-t2v"), lazy=True)
        env = dict(os.environ, OMP_NUM_THREADS="1")
        env.pop("TURBOVID_WORKER_TOKEN", None)
        if token is not None:
            env["TURBOVID_WORKER_TOKEN"] = token
        return harness.Proc(name, argv, os.path.join(c.dir, f"{name}.log"), env)

    def wait_log(self, proc, text, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(proc.log_path, errors="replace") as f:
                if text in f.read():
                    return
            time.sleep(0.1)
        self.fail(f"{proc.name}: no '{text}' within {timeout}s:\n{proc.tail()}")

    def test_1_workers_need_a_token(self):
        c = self.cluster
        self.wait_registered(1)  # w0, with the pool token
        before = 1
        for name, token in (("no-token", None), ("bad-token", "wt-not-a-token")):
            with self.subTest(name):
                rogue = self.start_rogue(f"rogue-{name}", token, name)
                try:
                    self.wait_log(rogue, "UNAUTHENTICATED")
                    self.assertEqual(self.registered_workers(), before)
                finally:
                    rogue.stop()
        with open(c.scheduler.log_path, errors="replace") as f:
            log = f.read()
        self.assertIn("refused: no worker credentials", log)
        self.assertNotIn("wt-not-a-token", log)  # presented tokens are never logged

    def test_2_duplicate_worker_ids(self):
        c = self.cluster
        rogue_token = "wt-rogue-" + os.urandom(8).hex()
        bound_token = "wt-bound-" + os.urandom(8).hex()
        c.write_worker_tokens([("pool", c.worker_token, []), ("rogue", rogue_token, []),
                               ("bound", bound_token, ["w9"])])
        time.sleep(1.2)  # the scheduler re-reads the file at most once a second
        client = c.client(c.keys["alice"])
        # Another credential cannot evict the connected w0.
        rogue = self.start_rogue("w0", rogue_token, "rogue-w0")
        try:
            self.wait_log(rogue, "held by a connected worker with another credential")
        finally:
            rogue.stop()
        # A token bound to w9 cannot register as w5.
        bound = self.start_rogue("w5", bound_token, "bound-w5")
        try:
            self.wait_log(bound, "PERMISSION_DENIED")
        finally:
            bound.stop()
        self.assertEqual(self.registered_workers(), 1)
        job = client.submit(client.request(harness.T2V_MODEL, "after the rogues", **SHORT))
        final = client.wait(job.job_id, timeout=180)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(final.worker_id, "w0")
        # The same credential replaces its own connection (a restarted worker).
        again = self.start_rogue("w0", c.worker_token, "w0-restart")
        try:
            self.wait_log(c.scheduler, "replaced by a new connection")
        finally:
            again.stop()

    def test_3_clients_need_a_key(self):
        c = self.cluster
        anonymous = c.client()
        code, details = self.code(lambda: anonymous.list())
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("authorization: Bearer", details)
        wrong = c.client("tv_" + "x" * 43)
        code, details = self.code(
            lambda: wrong.submit(wrong.request(harness.T2V_MODEL, "x", **SHORT)))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("unknown API key", details)
        # The CLI: flag and environment variable.
        r = c.cli("list")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("UNAUTHENTICATED", r.stdout + r.stderr)
        r = c.cli("list", "--api-key", c.keys["alice"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = c.cli("list", env=dict(os.environ, TURBOVID_API_KEY=c.keys["bob"]))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_4_tenants_see_only_their_jobs(self):
        c = self.cluster
        alice, bob, admin = (c.client(c.keys[t]) for t in ("alice", "bob", "admin"))
        done = alice.submit(alice.request(harness.T2V_MODEL, "alice's", request_id="same-id",
                                          **SHORT))
        final = alice.wait(done.job_id, timeout=180)
        self.assertEqual(alice.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(final.request.tenant, "alice")
        self.assertGreater(len(alice.download(done.job_id)), 0)
        jid = done.job_id
        for what, call in (("get", lambda: bob.get(jid)), ("cancel", lambda: bob.cancel(jid)),
                           ("download", lambda: bob.download(jid)),
                           ("watch", lambda: list(bob.watch(jid, timeout=10)))):
            with self.subTest(what):
                code, details = self.code(call)
                self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
                self.assertIn("no job", details)
        # A tenant cannot ask for another's list, nor claim a tenant in its request.
        bob_list = bob.stub.ListJobs(bob.pb.ListJobsRequest(tenant="alice"), timeout=10).jobs
        self.assertNotIn(jid, [j.job_id for j in bob_list])
        forged = bob.request(harness.T2V_MODEL, "bob's", request_id="same-id", **SHORT)
        forged.tenant = "alice"
        bob_job = bob.submit(forged)
        self.assertNotEqual(bob_job.job_id, jid)  # client_request_id is per tenant
        self.assertEqual(bob_job.request.tenant, "bob")
        self.assertEqual([j.job_id for j in bob.list()], [bob_job.job_id])
        self.assertIn(jid, [j.job_id for j in alice.list()])
        self.assertNotIn(bob_job.job_id, [j.job_id for j in alice.list()])
        everyone = [j.job_id for j in admin.list()]
        self.assertIn(jid, everyone)
        self.assertIn(bob_job.job_id, everyone)
        self.assertEqual(admin.get(jid).job_id, jid)
        bob.wait(bob_job.job_id, timeout=180)

    def test_5_http_gateway_on_its_own_port(self):
        c = self.cluster
        alice, bob = c.keys["alice"], c.keys["bob"]
        for path in ("/v1/videos", "/turbovid/v1/jobs", "/turbovid/v1/models"):
            with self.subTest(path):
                status, body = http(c.api_port, path, "POST" if path == "/v1/videos" else "GET")
                self.assertEqual(status, 401, body)
                self.assertEqual(json.loads(body)["code"], "UNAUTHENTICATED")
        # The web page itself is served without a key (it holds no data).
        self.assertEqual(http(c.api_port, "/")[0], 200)
        request = json.dumps({"model_id": harness.T2V_MODEL, "prompt": "over http",
                              "num_frames": 5, "num_steps": 2,
                              "size": {"width_pixels": 64, "height_pixels": 64}})
        status, body = http(c.api_port, "/turbovid/v1/jobs", "POST", request, key=alice)
        self.assertEqual(status, 200, body)
        job_id = json.loads(body)["job_id"]
        self.assertEqual(http(c.api_port, f"/turbovid/v1/jobs/{job_id}", key=alice)[0], 200)
        status, body = http(c.api_port, f"/turbovid/v1/jobs/{job_id}", key=bob)
        self.assertEqual(status, 404, body)
        status, body = http(c.api_port, f"/turbovid/v1/jobs/{job_id}:cancel", "POST", "{}",
                            key=bob)
        self.assertEqual(status, 404, body)
        # The OpenAI-compatible route is scoped the same way.
        self.assertEqual(http(c.api_port, f"/v1/videos/{job_id}", key=bob)[0], 404)
        self.assertEqual(http(c.api_port, f"/v1/videos/{job_id}", key=alice)[0], 200)
        # The ops port: probes and metrics, no job API; the job port: no metrics.
        self.assertEqual(http(c.http_port, "/turbovid/v1/jobs", key=alice)[0], 404)
        self.assertEqual(http(c.http_port, "/v1/videos", key=alice)[0], 404)
        self.assertEqual(http(c.http_port, "/metrics")[0], 200)
        self.assertEqual(http(c.http_port, "/healthz")[0], 200)
        self.assertEqual(http(c.api_port, "/metrics", key=alice)[0], 404)
        c.client(alice).wait(job_id, timeout=180)

    def test_6_revoked_key_stops_working(self):
        c = self.cluster
        key = c.add_key("temp-key", "carol")
        carol = c.client(key)
        time.sleep(1.2)
        carol.list()
        subprocess.run([harness.binary("turbovid-scheduler"), "keys", "revoke", "--file",
                        c.keys_file, "--name", "temp-key"], check=True, timeout=30)
        deadline = time.monotonic() + 5
        while True:
            try:
                carol.list()
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAUTHENTICATED)
                break
            self.assertLess(time.monotonic(), deadline, "revoked key still accepted")
            time.sleep(0.2)
        with open(c.keys_file) as f:
            self.assertNotIn(key, f.read())  # only digests are stored


    def test_7_submit_rate_is_limited_per_tenant(self):
        c = self.cluster
        bob = c.client(c.keys["bob"])
        request = json.dumps({"model_id": harness.T2V_MODEL, "prompt": "many", "num_frames": 5,
                              "num_steps": 2, "size": {"width_pixels": 64, "height_pixels": 64}})
        accepted, refusal = [], None
        for _ in range(25):
            status, body = http(c.api_port, "/turbovid/v1/jobs", "POST", request,
                                key=c.keys["bob"])
            if status == 429:
                refusal = json.loads(body)
                break
            self.assertEqual(status, 200, body)
            accepted.append(json.loads(body)["job_id"])
        self.assertIsNotNone(refusal, "25 submits in a burst were all accepted")
        self.assertEqual(refusal["code"], "RESOURCE_EXHAUSTED")
        self.assertIn("tenant 'bob'", refusal["message"])
        self.assertIn("retry after", refusal["message"])
        # alice's bucket is her own.
        alice = c.client(c.keys["alice"])
        alice.cancel(alice.submit(alice.request(harness.T2V_MODEL, "still fine", **SHORT)).job_id)
        text = c.metrics(c.http_port)
        refused = dict(harness.metric_values(text, "turbovid_quota_refusals_total"))
        self.assertGreaterEqual(refused.get('{reason="submit_rate"}', 0), 1)
        for job_id in accepted:
            bob.cancel(job_id)


if __name__ == "__main__":
    e2e_case.main()
