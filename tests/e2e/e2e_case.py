"""Shared unittest base: one Cluster per test class, logs printed when a test fails."""
import os
import sys
import time
import unittest

import harness

# A job big enough that each denoising step takes a visible moment on the tiny CPU model.
LONG = dict(frames=int(os.environ.get("TV_E2E_LONG_FRAMES", "17")),
            width=int(os.environ.get("TV_E2E_LONG_SIZE", "256")),
            height=int(os.environ.get("TV_E2E_LONG_SIZE", "256")), steps=4)
SHORT = dict(frames=5, width=64, height=64, steps=2)
# A few seconds per job: long enough that a queue of them is still queued a moment later.
MEDIUM = dict(frames=17, width=128, height=128, steps=4)


class ClusterCase(unittest.TestCase):
    WORKERS = 2
    NAME = "e2e"
    WORKER_MODELS = None  # worker id -> model flags (harness.model_flags); None = both preloaded
    SCHEDULER_ARGS = ()   # extra turbovid-scheduler flags

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        cls.cluster = harness.Cluster(cls.NAME, workers=cls.WORKERS,
                                      worker_models=cls.WORKER_MODELS,
                                      scheduler_args=cls.SCHEDULER_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close(failed=cls.failed)

    def run(self, result=None):
        result = super().run(result)
        if result and (result.failures or result.errors):
            type(self).failed = True
        return result

    def wait_for(self, client, job_id, predicate, timeout=120):
        """Watches until predicate(job) holds; returns that job snapshot."""
        deadline = time.monotonic() + timeout
        for job in client.watch(job_id, timeout=timeout):
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                break
        self.fail(f"job {job_id}: condition not reached (last {job})")

    def denoising(self, client, min_step=1):
        return lambda j: (client.state_name(j) == "JOB_STATE_RUNNING"
                          and client.stage_name(j) == "STAGE_DENOISING" and j.step >= min_step)


def main():
    unittest.main(argv=sys.argv[:1], verbosity=2)
