"""Two schedulers on one data directory: the second (same --db and --artifacts) exits non-zero
within seconds, naming the directory and the first one's pid, and the first keeps serving."""
import os
import subprocess
import time

import e2e_case
import harness
from e2e_case import SHORT


class DataDirLockTest(e2e_case.ClusterCase):
    WORKERS = 1
    NAME = "data-dir-lock"

    def start_second(self, db, artifacts):
        argv = [harness.binary("turbovid-scheduler"), "--listen", f"127.0.0.1:{harness.free_port()}",
                "--http-address", "127.0.0.1", "--http-port", str(harness.free_port()),
                "--db", db, "--artifacts", artifacts, "--models", harness.CATALOG]
        start = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return r, time.monotonic() - start

    def test_second_scheduler_on_the_same_directory_exits(self):
        c = self.cluster
        db = os.path.join(c.dir, "jobs.db")
        artifacts = os.path.join(c.dir, "artifacts")
        client = c.client()
        queued = client.submit(client.request(harness.T2V_MODEL, "before", **SHORT))

        for second_db, second_artifacts in ((db, artifacts),
                                            (os.path.join(c.dir, "other", "jobs.db"), artifacts)):
            with self.subTest(db=second_db, artifacts=second_artifacts):
                r, seconds = self.start_second(second_db, second_artifacts)
                self.assertNotEqual(r.returncode, 0, r.stderr)
                self.assertLess(seconds, 10)
                message = r.stdout + r.stderr
                self.assertIn("in use by another turbovid-scheduler", message)
                self.assertIn(f"pid {c.scheduler.pid}", message)
                locked = c.dir if second_db == db else artifacts
                self.assertIn(os.path.realpath(locked), message)

        # The first scheduler kept serving: its job finishes and a new one is admitted.
        self.assertTrue(c.scheduler.alive(), c.scheduler.tail())
        final = client.wait(queued.job_id, timeout=180)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(len(client.download(queued.job_id)), final.video_bytes)
        after = client.submit(client.request(harness.T2V_MODEL, "after", **SHORT))
        self.assertEqual(client.state_name(client.wait(after.job_id, 180)), "JOB_STATE_SUCCEEDED")


if __name__ == "__main__":
    e2e_case.main()
