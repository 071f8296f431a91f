"""Worker results are checked, and the artifact store has a size limit, end to end: a real
scheduler, a real CPU worker and a rogue WorkerHub client (rogue_worker.py) holding a valid
registration.

- A rogue upload of garbage fails the attempt with an error naming the worker ("not a valid
  MP4"), a real MP4 of the wrong size or frame count likewise ("is 64x64, the job renders at
  96x64"); nothing is stored or served, turbovid_results_rejected_total counts each.
- With retention.artifact_store_max_bytes reached, new submits are refused RESOURCE_EXHAUSTED
  (HTTP 429) naming the limit, and a job admitted before still stores its video;
  turbovid_artifact_store_bytes is what the directory holds.
"""
import json
import os
import time

import grpc

import e2e_case
import harness
from e2e_case import SHORT
from rogue_worker import RogueWorker

http = harness.api_call


def artifact_files(cluster):
    folder = os.path.join(cluster.dir, "artifacts")
    return sorted(f for f in os.listdir(folder) if f.endswith(".mp4"))


class ResultCheckTest(e2e_case.ClusterCase):
    WORKERS = 0  # the rogue first; the real worker joins in test_2
    NAME = "result-check"
    SCHEDULER_ARGS = ("--max-attempts", "1")

    def rejected(self):
        text = self.cluster.metrics(self.cluster.http_port)
        return {k: v for k, v in harness.metric_values(text, "turbovid_results_rejected_total")}

    def rogue_answers(self, client, video, **shape):
        rogue = RogueWorker(self.cluster.address, "rogue-1", [(harness.T2V_MODEL, harness.VARIANT)])
        try:
            job = client.submit(client.request(harness.T2V_MODEL, "rogue", **shape))
            task = rogue.next_task()
            self.assertEqual(task.task_id, job.job_id)
            rogue.answer(task, video)
            return client.wait(job.job_id, timeout=30)
        finally:
            rogue.close()

    def test_1_garbage_is_refused(self):
        client = self.cluster.client()
        final = self.rogue_answers(client, b"\x00\x00\x00\x18garbage, not an mp4" * 100, **SHORT)
        self.assertEqual(client.state_name(final), "JOB_STATE_FAILED")
        self.assertIn("result rejected: worker rogue-1: uploaded video is not a valid MP4",
                      final.error)
        with self.assertRaises(grpc.RpcError) as ctx:
            client.download(final.job_id)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(artifact_files(self.cluster), [])
        self.assertEqual(self.rejected().get('{reason="unparseable"}'), 1)

    def test_2_wrong_size_and_frames_are_refused(self):
        c = self.cluster
        client = c.client()
        # A real MP4 from the real worker: 5 frames of 64x64.
        c.start_worker("w0", wait=True)
        job = client.submit(client.request(harness.T2V_MODEL, "a real one", **SHORT))
        self.assertEqual(client.state_name(client.wait(job.job_id, timeout=180)),
                         "JOB_STATE_SUCCEEDED")
        real = client.download(job.job_id)
        c.workers.pop("w0").stop()
        path = os.path.join(c.dir, "real.mp4")
        with open(path, "wb") as f:
            f.write(real)
        self.assertEqual(harness.probe(path), ("h264", 64, 64, 5))
        # The same bytes for a job of another size, then of another frame count.
        final = self.rogue_answers(client, real, frames=5, width=96, height=64, steps=2)
        self.assertEqual(client.state_name(final), "JOB_STATE_FAILED")
        self.assertEqual(final.error, "result rejected: worker rogue-1: uploaded video is 64x64, "
                                      "the job renders at 96x64")
        final = self.rogue_answers(client, real, frames=9, width=64, height=64, steps=2)
        self.assertEqual(final.error, "result rejected: worker rogue-1: uploaded video has 5 "
                                      "frames, the job asked for 9")
        self.assertEqual(artifact_files(c), [f"{job.job_id}.mp4"])  # the real one only
        rejected = self.rejected()
        self.assertEqual(rejected.get('{reason="size"}'), 1)
        self.assertEqual(rejected.get('{reason="frames"}'), 1)
        type(self).real_size = len(real)

    def test_3_full_artifact_store_refuses_submits(self):
        c = self.cluster
        size = type(self).real_size
        # Room for one more video: two jobs are admitted, the first fills the store, the second
        # finishes over the limit and keeps its video.
        c.scheduler.stop()
        c.scheduler_args += ["--artifact-store-max-bytes", str(size + 1)]
        c.start_scheduler()
        client = c.client()
        text = c.metrics(c.http_port)
        self.assertEqual(harness.metric_values(text, "turbovid_artifact_store_bytes"),
                         [("", float(size))])
        self.assertEqual(harness.metric_values(text, "turbovid_artifact_store_max_bytes"),
                         [("", float(size + 1))])
        jobs = [client.submit(client.request(harness.T2V_MODEL, f"fill {i}", **SHORT))
                for i in range(2)]
        c.start_worker("w0", wait=True)
        for job in jobs:
            final = client.wait(job.job_id, timeout=180)
            self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
            self.assertGreater(len(client.download(job.job_id)), 0)
        with self.assertRaises(grpc.RpcError) as ctx:
            client.submit(client.request(harness.T2V_MODEL, "no room", **SHORT))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn(f"retention.artifact_store_max_bytes is {size + 1}",
                      ctx.exception.details())
        request = json.dumps({"model_id": harness.T2V_MODEL, "prompt": "no room over http",
                              "num_frames": 5, "num_steps": 2,
                              "size": {"width_pixels": 64, "height_pixels": 64}})
        status, body = http(c.api_port, "/turbovid/v1/jobs", "POST", request)
        self.assertEqual(status, 429, body)
        self.assertIn("artifact store full", json.loads(body)["message"])
        held = sum(os.path.getsize(os.path.join(c.dir, "artifacts", f))
                   for f in artifact_files(c))
        deadline = time.monotonic() + 10
        while True:  # the gauge is set on each scrape
            text = c.metrics(c.http_port)
            if harness.metric_values(text, "turbovid_artifact_store_bytes") == [("", float(held))]:
                break
            self.assertLess(time.monotonic(), deadline, text)
            time.sleep(0.2)
        self.assertEqual(harness.metric_values(text, "turbovid_artifact_store_files"),
                         [("", 3.0)])


if __name__ == "__main__":
    e2e_case.main()
