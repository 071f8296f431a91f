"""kill -9 the scheduler with jobs queued and running, start it again: every accepted job
completes exactly once, and a retried Submit with the same client_request_id returns the same job."""
import os
import time

import e2e_case
import harness
from e2e_case import MEDIUM


class SchedulerRestartTest(e2e_case.ClusterCase):
    WORKERS = 2
    NAME = "sched-restart"

    def test_restart_with_full_queue(self):
        c = self.cluster
        client = c.client()
        requests = [client.request(harness.T2V_MODEL, f"durable {i}", seed=i,
                                   request_id=f"restart-{i}", **MEDIUM)
                    for i in range(6)]
        jobs = [client.submit(r) for r in requests]
        ids = [j.job_id for j in jobs]
        self.assertEqual(len(set(ids)), len(ids))
        self.wait_for(client, ids[0], lambda j: client.state_name(j) in (
            "JOB_STATE_ASSIGNED", "JOB_STATE_RUNNING"))
        states = {client.state_name(client.get(i)) for i in ids}
        self.assertIn("JOB_STATE_QUEUED", states)

        c.scheduler.kill9()
        c.start_scheduler()
        client = c.client()  # a fresh channel to the restarted process
        # Retried submits (same client_request_id) name the same jobs.
        for r, job_id in zip(requests, ids):
            self.assertEqual(client.submit(r).job_id, job_id)
        finals = [client.wait(i, timeout=300) for i in ids]
        self.assertEqual([client.state_name(j) for j in finals], ["JOB_STATE_SUCCEEDED"] * 6,
                         [j.error for j in finals])
        listed = client.list(model=harness.T2V_MODEL)
        self.assertEqual(sorted(j.job_id for j in listed), sorted(ids))
        for j in finals:
            data = client.download(j.job_id)
            self.assertEqual(len(data), j.video_bytes)
        path = os.path.join(c.dir, "after-restart.mp4")
        with open(path, "wb") as f:
            f.write(client.download(ids[-1]))
        self.assertEqual(harness.ffprobe(path)[1:], (MEDIUM["width"], MEDIUM["height"],
                                                     MEDIUM["frames"]))
        # Both workers came back to the restarted scheduler.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = c.metrics(c.worker_ports["w0"]) + c.metrics(c.worker_ports["w1"])
            if sum(v for _, v in harness.metric_values(m, "turbovid_worker_connected")) == 2:
                break
            time.sleep(0.5)
        else:
            self.fail("workers did not reconnect")


if __name__ == "__main__":
    e2e_case.main()
