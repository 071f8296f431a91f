"""kill -9 a worker mid-job → the job completes on the other worker; SIGTERM drains a worker
(it finishes its running task, then exits 0)."""
import signal

import e2e_case
import harness
from e2e_case import LONG, SHORT


class WorkerKillTest(e2e_case.ClusterCase):
    WORKERS = 2
    NAME = "worker-kill"

    def test_kill_worker_mid_job(self):
        c = self.cluster
        client = c.client()
        job = client.submit(client.request(harness.T2V_MODEL, "survive a crash", **LONG))
        running = self.wait_for(client, job.job_id, self.denoising(client, 1), timeout=180)
        victim = running.worker_id
        self.assertIn(victim, c.workers)
        c.workers[victim].kill9()
        final = client.wait(job.job_id, timeout=300)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertNotEqual(final.worker_id, victim)
        self.assertGreaterEqual(final.attempts, 2)
        self.assertGreater(len(client.download(job.job_id)), 0)

    def test_sigterm_drains(self):
        c = self.cluster
        for wid, proc in list(c.workers.items()):
            if not proc.alive():
                c.start_worker(wid, wait=True)
        client = c.client()
        job = client.submit(client.request(harness.T2V_MODEL, "finish me", **LONG))
        running = self.wait_for(client, job.job_id, self.denoising(client, 1), timeout=180)
        worker = c.workers[running.worker_id]
        worker.popen.send_signal(signal.SIGTERM)
        final = client.wait(job.job_id, timeout=300)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(final.worker_id, running.worker_id)  # finished where it ran
        self.assertEqual(final.attempts, 1)
        self.assertEqual(worker.popen.wait(30), 0, worker.tail())
        # The other worker keeps serving.
        nxt = client.submit(client.request(harness.T2V_MODEL, "after the drain", **SHORT))
        done = client.wait(nxt.job_id, timeout=180)
        self.assertEqual(client.state_name(done), "JOB_STATE_SUCCEEDED")
        self.assertNotEqual(done.worker_id, running.worker_id)


if __name__ == "__main__":
    e2e_case.main()
