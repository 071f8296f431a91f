"""A damaged job store: the scheduler refuses to start on an overwritten header, an overwritten
page, a file truncated to half or to 0 bytes (0 bytes starts only with --allow-empty-db);
`turbovid-scheduler recover` salvages the readable jobs into a file a scheduler serves them from.
Backups appear on schedule, pass integrity_check and are pruned; corruption written under a
running scheduler flips turbovid_scheduler_db_integrity_ok to 0 and /readyz to 503."""
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest

import grpc

import e2e_case
import harness

PAGE = 4096  # SQLite's default page size, as the store creates its file
JOBS = 300


def overwrite(path, offset, size):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xa5" * size)


def wait_exit(proc, timeout=30):
    try:
        return proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill9()
        raise AssertionError(f"scheduler did not refuse to start:\n{proc.tail()}")


class DbCorruptionTest(e2e_case.ClusterCase):
    WORKERS = 0  # jobs stay queued: only the store is under test
    NAME = "db-corrupt"

    def submit_jobs(self):
        client = self.cluster.client()
        ids = []
        for i in range(JOBS):
            r = client.request(harness.T2V_MODEL, f"job {i} " + "x" * 300, seed=i,
                               request_id=f"corrupt-{i}")
            ids.append(client.submit(r).job_id)
        return ids

    def start_refused(self, db, *extra):
        c = self.cluster
        c.scheduler_args = ["--db", db] + list(extra)
        proc = c.start_scheduler(wait=False)
        rc = wait_exit(proc)
        self.assertNotEqual(rc, 0, proc.tail())
        return proc.tail(20)

    def serve(self, db, *extra):
        c = self.cluster
        c.scheduler_args = ["--db", db] + list(extra)
        c.start_scheduler()
        return c.client()

    def recover(self, broken, out):
        r = subprocess.run([harness.binary("turbovid-scheduler"), "recover", "--db", broken,
                            "--out", out], capture_output=True, text=True, timeout=120)
        m = re.search(r"copied=(\d+) lost=(\w+)", r.stdout)
        return r.returncode, int(m.group(1)) if m else 0, r.stdout + r.stderr

    def test_corrupt_databases(self):
        c = self.cluster
        ids = self.submit_jobs()
        db = os.path.join(c.dir, "jobs.db")
        self.assertEqual(c.scheduler.stop(), 0)  # graceful: the WAL is folded into the file
        self.assertFalse(os.path.exists(db + "-wal") and os.path.getsize(db + "-wal") > 0)
        pristine = os.path.join(c.dir, "pristine.db")
        shutil.copy(db, pristine)
        pages = os.path.getsize(pristine) // PAGE
        self.assertGreater(pages, 20)

        def damaged(kind):
            path = os.path.join(c.dir, f"{kind}.db")
            shutil.copy(pristine, path)
            shutil.copy(db + ".initialized", path + ".initialized")  # it held jobs
            if kind == "header":
                overwrite(path, 0, 100)
            elif kind == "page":
                overwrite(path, (pages // 2) * PAGE, PAGE)
            elif kind == "half":
                os.truncate(path, (pages // 2) * PAGE)
            elif kind == "empty":
                os.truncate(path, 0)
            return path

        for kind in ("header", "page", "half"):
            with self.subTest(kind=kind):
                path = damaged(kind)
                log = self.start_refused(path)
                self.assertIn(path, log)
                self.assertIn("recover", log)
                out = os.path.join(c.dir, f"recovered-{kind}.db")
                rc, copied, text = self.recover(path, out)
                self.assertEqual(rc, 0, text)
                self.assertGreater(copied, 0, text)
                if kind == "header":
                    self.assertEqual(copied, JOBS, text)
                client = self.serve(out)
                found = 0
                for job_id in ids:
                    try:
                        job = client.get(job_id)
                    except grpc.RpcError as e:
                        self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
                        continue
                    self.assertEqual(client.state_name(job), "JOB_STATE_QUEUED")
                    found += 1
                self.assertEqual(found, copied, text)
                self.assertEqual(len(client.list(model=harness.T2V_MODEL)), copied)
                self.assertEqual(c.scheduler.stop(), 0)

        with self.subTest(kind="empty"):
            path = damaged("empty")
            log = self.start_refused(path)
            self.assertIn("--allow-empty-db", log)
            rc, copied, text = self.recover(path, os.path.join(c.dir, "recovered-empty.db"))
            self.assertNotEqual(rc, 0, text)
            client = self.serve(path, "--allow-empty-db")
            self.assertEqual(client.list(), [])
            self.assertEqual(c.scheduler.stop(), 0)


class DbBackupAndLiveCheckTest(unittest.TestCase):
    """Backups every second (keep 2), quick_check every half second."""

    @classmethod
    def setUpClass(cls):
        cls.config_dir = tempfile.mkdtemp(prefix="tv-e2e-db-config-")
        cls.config = os.path.join(cls.config_dir, "scheduler.yaml")
        with open(cls.config, "w") as f:
            f.write("db_backup_interval_seconds: 1\ndb_backup_keep: 2\n"
                    "db_integrity_check_interval_seconds: 0.5\n")
        cls.cluster = harness.Cluster("db-backup", workers=0,
                                      scheduler_args=["--config", cls.config])

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close(failed=False)
        shutil.rmtree(cls.config_dir, ignore_errors=True)

    def metric(self, name):
        values = harness.metric_values(self.cluster.metrics(self.cluster.http_port), name)
        return values[0][1] if values else None

    def backups(self):
        folder = os.path.join(self.cluster.dir, "backups")
        if not os.path.isdir(folder):
            return []
        return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                      if n.startswith("jobs-") and n.endswith("Z.db"))

    def test_a_backups_on_schedule_checked_and_pruned(self):
        client = self.cluster.client()
        for i in range(20):
            client.submit(client.request(harness.T2V_MODEL, f"backup {i}", seed=i))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.metric(
                "turbovid_scheduler_db_backup_last_size_bytes") in (None, 0):
            time.sleep(0.2)
        time.sleep(4)  # several more rounds: the folder stays pruned to 2
        files = self.backups()
        self.assertEqual(len(files), 2, files)
        db = sqlite3.connect(f"file:{files[-1]}?mode=ro", uri=True)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertGreaterEqual(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0], 20)
        db.close()
        self.assertGreater(self.metric("turbovid_scheduler_db_backup_last_size_bytes"), 0)
        self.assertEqual(self.metric("turbovid_scheduler_db_backup_failures_total"), 0)

    def test_b_corruption_while_running_is_detected(self):
        c = self.cluster
        client = c.client()
        for i in range(200):
            client.submit(client.request(harness.T2V_MODEL, f"live {i} " + "y" * 300, seed=i))
        # A graceful stop folds the WAL into the file; after the restart nothing rewrites the job
        # pages (no workers), so the page overwritten below is read from the main file.
        self.assertEqual(c.scheduler.stop(), 0)
        c.start_scheduler()
        self.assertEqual(harness.http_get(c.http_port, "/readyz")[0], 200)
        time.sleep(1)
        self.assertEqual(self.metric("turbovid_scheduler_db_integrity_ok"), 1)
        db = os.path.join(c.dir, "jobs.db")
        pages = os.path.getsize(db) // PAGE
        overwrite(db, (pages // 2) * PAGE, PAGE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if harness.http_get(c.http_port, "/readyz")[0] == 503:
                break
            time.sleep(0.2)
        else:
            self.fail(f"/readyz still ready after corruption:\n{c.scheduler.tail()}")
        self.assertEqual(self.metric("turbovid_scheduler_db_integrity_ok"), 0)
        self.assertGreaterEqual(self.metric("turbovid_scheduler_db_integrity_failures_total"), 1)
        self.assertIn("integrity check failed", c.scheduler.tail(80))


if __name__ == "__main__":
    e2e_case.main()
