"""Cancel while denoising → CANCELLED within one step; the same worker then takes the next job."""
import e2e_case
import harness
from e2e_case import LONG, SHORT


class CancelTest(e2e_case.ClusterCase):
    WORKERS = 1
    NAME = "cancel"

    def test_cancel_while_denoising(self):
        c = self.cluster
        client = c.client()
        job = client.submit(client.request(harness.T2V_MODEL, "a long walk", **LONG))
        running = self.wait_for(client, job.job_id, self.denoising(client, 1), timeout=180)
        r = c.cli("cancel", job.job_id, check=True)
        self.assertIn(job.job_id, r.stdout)
        final = client.wait(job.job_id, timeout=120)
        self.assertEqual(client.state_name(final), "JOB_STATE_CANCELLED")
        # Honoured between denoising steps: at most one more step ran after the cancel.
        self.assertLessEqual(final.step, running.step + 1, (running, final))
        self.assertLess(final.step, LONG["steps"], final)
        self.assertEqual(final.video_bytes, 0)

        nxt = client.submit(client.request(harness.T2V_MODEL, "the next one", **SHORT))
        done = client.wait(nxt.job_id, timeout=180)
        self.assertEqual(client.state_name(done), "JOB_STATE_SUCCEEDED")
        self.assertEqual(done.worker_id, running.worker_id)

    def test_cancel_queued_job(self):
        c = self.cluster
        client = c.client()
        first = client.submit(client.request(harness.T2V_MODEL, "busy", **LONG))
        queued = client.submit(client.request(harness.T2V_MODEL, "waiting", **SHORT))
        self.assertEqual(client.state_name(client.cancel(queued.job_id)), "JOB_STATE_CANCELLED")
        client.cancel(first.job_id)
        self.assertEqual(client.state_name(client.wait(first.job_id, 120)), "JOB_STATE_CANCELLED")


if __name__ == "__main__":
    e2e_case.main()
