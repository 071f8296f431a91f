"""The worker's drain path as an orchestrator drives it: `turbovid-worker drain` (the Kubernetes
preStop hook) turns /readyz to 503 at once and the running job still finishes on that worker;
the SIGTERM that follows the hook only drains (it is not a second, stopping signal); the worker
then exits 0. /drain takes POST only. A SIGTERM alone also turns /readyz to 503 at once."""
import signal
import subprocess
import time
import urllib.request

import e2e_case
import harness
from e2e_case import LONG, SHORT


def post(port, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class DrainTest(e2e_case.ClusterCase):
    WORKERS = 2
    NAME = "drain"

    def running_job(self, prompt):
        client = self.cluster.client()
        job = client.submit(client.request(harness.T2V_MODEL, prompt, **LONG))
        running = self.wait_for(client, job.job_id, self.denoising(client, 1), timeout=180)
        return client, job, running

    def finish_on(self, client, job, running, worker):
        final = client.wait(job.job_id, timeout=300)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(final.worker_id, running.worker_id)  # finished where it ran
        self.assertEqual(final.attempts, 1)
        self.assertEqual(worker.popen.wait(60), 0, worker.tail())

    def test_drain_command_then_sigterm(self):
        c = self.cluster
        port = c.worker_ports["w0"]
        self.assertEqual(harness.http_get(port, "/drain")[0], 405)  # GET changes nothing
        self.assertEqual(harness.http_get(port, "/readyz")[0], 200)
        # Keep w1 out of the way so the job lands on w0.
        c.workers["w1"].stop()
        client, job, running = self.running_job("drain by command")
        self.assertEqual(running.worker_id, "w0")
        worker = c.workers["w0"]
        r = subprocess.run([harness.binary("turbovid-worker"), "drain", "--http-port", str(port)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("draining", r.stdout)
        self.assertEqual(harness.http_get(port, "/readyz")[0], 503)
        self.assertEqual(harness.http_get(port, "/healthz")[0], 200)  # still live
        # What the kubelet sends after the hook: must not stop the running job.
        worker.popen.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(worker.alive())
        self.finish_on(client, job, running, worker)
        # Nothing listens any more: the command says so and fails.
        r = subprocess.run([harness.binary("turbovid-worker"), "drain", "--http-port", str(port)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no worker", r.stderr)

    def test_sigterm_turns_readyz_off_at_once(self):
        c = self.cluster
        for wid in ("w0", "w1"):
            if not c.workers[wid].alive():
                c.start_worker(wid, wait=True)
        c.workers["w0"].stop()
        client, job, running = self.running_job("drain by signal")
        worker = c.workers[running.worker_id]
        port = c.worker_ports[running.worker_id]
        worker.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while harness.http_get(port, "/readyz")[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(harness.http_get(port, "/readyz")[0], 503)
        self.finish_on(client, job, running, worker)
        # A new job still runs once a worker is back.
        c.start_worker("w0", wait=True)
        nxt = client.submit(client.request(harness.T2V_MODEL, "after the drain", **SHORT))
        self.assertEqual(client.state_name(client.wait(nxt.job_id, timeout=180)),
                         "JOB_STATE_SUCCEEDED")


if __name__ == "__main__":
    e2e_case.main()
