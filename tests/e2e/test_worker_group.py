"""A worker group on the CPU backend (docs/parallelism.md §5): one logical worker of two processes
(the leader starts the second), their collectives over the socket communicator. It registers
once and generates (tensor parallel, then sequence parallel); kill -9 a follower mid-job → the
job is requeued and the leader exits with code 4; kill -9 the leader mid-job → the follower
exits by itself; a restarted leader re-forms the group and the job succeeds; SIGTERM shuts the
whole group down."""
import os
import signal
import time

import e2e_case
import harness

GROUP = "g"
MODEL_DIR = os.path.join(harness.MODELS_DIR, "tiny-t2v-4heads")  # 4 heads: splits over 2 ranks
# Long enough that a rank can be killed between denoising steps.
LONG = dict(frames=33, width=256, height=256, steps=4)
SHORT = e2e_case.SHORT
EXIT_GROUP_LOST = 4


def children(pid):
    """Pids of the direct children of `pid` (the follower ranks of a leader)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


class WorkerGroupTest(e2e_case.ClusterCase):
    WORKERS = 0
    NAME = "worker-group"

    def start_group(self, *layout):
        c = self.cluster
        c.worker_models[GROUP] = harness.model_flags(harness.T2V_MODEL, MODEL_DIR)
        leader = c.start_worker(GROUP, wait=True,
                                extra_args=list(layout or ("--tensor-parallel-size", "2")))
        followers = children(leader.pid)
        self.assertEqual(len(followers), 1, leader.tail())
        return leader, followers[0]

    def run_long_and_wait_denoising(self, client, prompt):
        job = client.submit(client.request(harness.T2V_MODEL, prompt, **LONG))
        running = self.wait_for(client, job.job_id, self.denoising(client, 1), timeout=180)
        self.assertEqual(running.worker_id, GROUP)
        return job

    def wait_queued(self, client, job_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = client.get(job_id)
            if client.state_name(j) == "JOB_STATE_QUEUED":
                return j
            time.sleep(0.2)
        self.fail(f"job {job_id} not requeued: {client.get(job_id)}")

    def test_1_registers_once_and_generates(self):
        c = self.cluster
        leader, follower = self.start_group()
        client = c.client()
        job = client.submit(client.request(harness.T2V_MODEL, "two processes, one worker", **SHORT))
        final = client.wait(job.job_id, timeout=180)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(final.worker_id, GROUP)
        path = os.path.join(c.dir, "group.mp4")
        with open(path, "wb") as f:
            f.write(client.download(job.job_id))
        self.assertEqual(harness.probe(path)[1:], (SHORT["width"], SHORT["height"], 5))
        with open(c.scheduler.log_path) as f:
            log = f.read()
        self.assertEqual(log.count(f"worker {GROUP} registered"), 1, log)
        self.assertIn("2 GPU(s), tp 2 x sp 1", log)
        listed = c.cli("workers", check=True).stdout  # ListWorkers: one worker of 2 GPUs
        self.assertIn(f"  {GROUP}  cpu, 2 GPUs", listed)
        # The follower ran the task beside the leader.
        self.assertIn("worker group rank 1: task", leader.tail(200))
        self.assertTrue(alive(follower))

    def test_2_follower_killed_mid_job(self):
        c = self.cluster
        leader = c.workers.get(GROUP)
        if leader is None or not leader.alive():
            leader, follower = self.start_group()
        else:
            follower = children(leader.pid)[0]
        client = c.client()
        job = self.run_long_and_wait_denoising(client, "lose a rank")
        os.kill(follower, signal.SIGKILL)
        # The leader reports the task lost and leaves with the group-lost code.
        self.assertEqual(leader.popen.wait(60), EXIT_GROUP_LOST, leader.tail())
        self.assertIn("worker group lost", leader.tail(100))
        self.wait_queued(client, job.job_id)
        # Restarted, the leader forms a new group, which finishes the job.
        self.start_group()
        final = client.wait(job.job_id, timeout=300)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertGreaterEqual(final.attempts, 2)
        self.assertGreater(len(client.download(job.job_id)), 0)

    def test_3_leader_killed_mid_job(self):
        c = self.cluster
        leader = c.workers[GROUP]
        follower = children(leader.pid)[0]
        client = c.client()
        job = self.run_long_and_wait_denoising(client, "lose the leader")
        leader.kill9()
        # The follower does not wait for the dead: it aborts its collectives and exits.
        self.assertTrue(wait_gone(follower, 30), "follower still running")
        # (by the death signal or by the closed sockets, whichever comes first)
        self.assertRegex(leader.tail(100), "rank 0 is gone|leader is gone")
        self.wait_queued(client, job.job_id)
        self.start_group()
        final = client.wait(job.job_id, timeout=300)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertGreaterEqual(final.attempts, 2)

    def test_4_sequence_parallel_and_shutdown(self):
        c = self.cluster
        c.workers[GROUP].stop()
        leader, follower = self.start_group("--sequence-parallel-size", "2")
        client = c.client()
        job = client.submit(client.request(harness.T2V_MODEL, "tokens over two ranks", **SHORT))
        final = client.wait(job.job_id, timeout=180)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        # SIGTERM drains the leader; it shuts its follower down and both exit 0.
        self.assertEqual(leader.stop(grace=30), 0, leader.tail())
        self.assertTrue(wait_gone(follower, 30))
        self.assertIn("worker group rank 1: shut down by rank 0", leader.tail(100))


if __name__ == "__main__":
    e2e_case.main()
