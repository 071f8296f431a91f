"""kill -9 the scheduler with jobs queued and running, start it again: every accepted job
completes exactly once, and a retried Submit with the same client_request_id returns the same job.
kill -9 it in the middle of a burst of concurrent submits (group commits in flight): every submit a
client saw acknowledged is stored after the restart."""
import os
import threading
import time

import grpc

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


class SubmitBurstKillTest(e2e_case.ClusterCase):
    WORKERS = 0  # the jobs stay queued: only the store is under test
    NAME = "sched-burst-kill"
    CLIENTS = 8
    KILL_AFTER = 300  # acknowledged submits before the kill

    def test_acknowledged_submits_survive_kill9_mid_burst(self):
        c = self.cluster
        acked = {}  # client_request_id -> job_id, as the clients saw them acknowledged
        errors = []
        lock = threading.Lock()
        stop = threading.Event()

        def run(n):
            client = c.client()  # one channel per client
            i = 0
            while not stop.is_set():
                request = client.request(harness.T2V_MODEL, f"burst {n}.{i}", seed=i,
                                         request_id=f"burst-{n}-{i}")
                try:
                    job = client.stub.SubmitVideo(request, timeout=10)
                except grpc.RpcError as e:  # the kill: this submit was in flight
                    with lock:
                        errors.append(e.code())
                    return
                with lock:
                    acked[request.client_request_id] = job.job.job_id
                i += 1

        threads = [threading.Thread(target=run, args=(n,)) for n in range(self.CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= self.KILL_AFTER or errors:
                    break
            time.sleep(0.005)
        c.scheduler.kill9()
        for t in threads:
            t.join(30)
        stop.set()
        with lock:
            acked_now = dict(acked)
            errors_now = list(errors)
        self.assertGreaterEqual(len(acked_now), self.KILL_AFTER, errors_now)
        # Every client was still submitting when the scheduler died.
        self.assertEqual(len(errors_now), self.CLIENTS, errors_now)

        c.start_scheduler()
        client = c.client()
        listed = {j.job_id: j for j in client.list(model=harness.T2V_MODEL)}
        missing = [r for r, job_id in acked_now.items() if job_id not in listed]
        self.assertEqual(missing, [], f"{len(missing)} of {len(acked_now)} acknowledged submits "
                                      f"lost")
        for request_id, job_id in acked_now.items():
            job = listed[job_id]
            self.assertEqual(job.request.client_request_id, request_id)
            self.assertEqual(client.state_name(job), "JOB_STATE_QUEUED")
        # Submits in flight at the kill were committed or not, never half: a retry settles it.
        retried = client.submit(client.request(harness.T2V_MODEL, "burst 0.0", seed=0,
                                               request_id="burst-0-0"))
        self.assertEqual(retried.job_id, acked_now["burst-0-0"])


if __name__ == "__main__":
    e2e_case.main()
