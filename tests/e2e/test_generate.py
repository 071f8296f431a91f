"""Scheduler + 2 CPU workers: T2V and I2V jobs through the C++ CLI and the Python grpcio client
complete; the MP4s pass ffprobe (frames, size), and `turbovid probe` reads the same; progress
events are ordered, step counts monotonic."""
import json
import os
import sys
import unittest

import e2e_case
import harness

FRAMES, WIDTH, HEIGHT, STEPS = 5, 64, 64, 2
STATE_ORDER = ["JOB_STATE_QUEUED", "JOB_STATE_ASSIGNED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
STAGE_ORDER = ["STAGE_UNSPECIFIED", "STAGE_LOADING_MODEL", "STAGE_ENCODING_TEXT",
               "STAGE_ENCODING_IMAGE", "STAGE_DENOISING", "STAGE_DECODING_VIDEO",
               "STAGE_ENCODING_MP4", "STAGE_UPLOADING"]


class GenerateTest(e2e_case.ClusterCase):
    NAME = "generate"
    WORKERS = 2

    def check_mp4(self, path, frames=FRAMES, width=WIDTH, height=HEIGHT):
        codec, w, h, n = harness.ffprobe(path)
        self.assertEqual(harness.probe(path), (codec, w, h, n))
        self.assertEqual(codec, "h264")
        self.assertEqual((w, h), (width, height))
        self.assertEqual(n, frames)

    def check_progress(self, events, client, num_steps=STEPS):
        """States never go back; stages never go back while RUNNING; steps increase by one."""
        states = [client.state_name(j) for j in events]
        ranks = [STATE_ORDER.index(s) for s in states]
        self.assertEqual(ranks, sorted(ranks), states)
        self.assertEqual(states[-1], "JOB_STATE_SUCCEEDED")
        running = [j for j in events if client.state_name(j) == "JOB_STATE_RUNNING"]
        stages = [STAGE_ORDER.index(client.stage_name(j)) for j in running]
        self.assertEqual(stages, sorted(stages), [client.stage_name(j) for j in running])
        steps = [j.step for j in running if client.stage_name(j) == "STAGE_DENOISING"]
        self.assertEqual(steps, sorted(steps))
        # Snapshots may coalesce, so not every step need be seen, but none beyond N.
        self.assertTrue(steps and 0 <= steps[0] and steps[-1] <= num_steps, steps)
        self.assertEqual(events[-1].num_steps, num_steps)
        progress = [j.progress for j in events]
        self.assertEqual(progress, sorted(progress))

    def test_cli_t2v_and_i2v(self):
        c = self.cluster
        out = os.path.join(c.dir, "cli-t2v.mp4")
        # A job long enough (~1.5 s, mostly denoising) that the CLI's watch stream sees its
        # denoising steps; a 64x64 2-step job can finish before the stream's first snapshot.
        r = c.cli("generate", "--model", harness.T2V_MODEL, "--prompt", "a red fox in the snow",
                  "--frames", "17", "--width", "128", "--height", "128",
                  "--steps", "4", "--seed", "7", "--out", out, "--json", check=True)
        job = json.loads(r.stdout)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED")
        self.assertIn("DENOISING step", r.stderr)  # the progress lines on stderr
        self.check_mp4(out, frames=17, width=128, height=128)

        png = os.path.join(c.dir, "input.png")
        with open(png, "wb") as f:
            f.write(harness.make_png(WIDTH, HEIGHT))
        out = os.path.join(c.dir, "cli-i2v.mp4")
        r = c.cli("generate", "--model", harness.I2V_MODEL, "--prompt", "waves on a lake",
                  "--image", png, "--frames", str(FRAMES), "--width", str(WIDTH), "--height",
                  str(HEIGHT), "--steps", str(STEPS), "--out", out, check=True)
        self.assertIn("SUCCEEDED", r.stdout)
        self.check_mp4(out)
        job_id = r.stdout.split()[1]

        r = c.cli("status", job_id, "--json", check=True)
        self.assertEqual(json.loads(r.stdout)["state"], "JOB_STATE_SUCCEEDED")
        r = c.cli("list", "--state", "succeeded", "--model", harness.I2V_MODEL, "--json",
                  check=True)
        self.assertIn(job_id, [json.loads(line)["job_id"] for line in r.stdout.splitlines()])
        r = c.cli("watch", job_id, "--json", check=True)
        self.assertEqual(json.loads(r.stdout.splitlines()[-1])["state"], "JOB_STATE_SUCCEEDED")

    def test_python_t2v_and_i2v(self):
        c = self.cluster
        client = c.client()
        # MEDIUM jobs (~1.5 s, mostly denoising) so that the watch stream sees denoising steps; a
        # 64x64 2-step job can finish before the stream's first snapshot (seen 1 run in 4).
        m = e2e_case.MEDIUM
        for model, image in ((harness.T2V_MODEL, b""),
                             (harness.I2V_MODEL, harness.make_png(128, 128))):
            job = client.submit(client.request(model, f"python {model}", m["frames"], m["width"],
                                               m["height"], m["steps"], seed=3, image=image))
            events = list(client.watch(job.job_id, timeout=240))
            self.check_progress(events, client, num_steps=m["steps"])
            final = events[-1]
            self.assertGreater(final.video_bytes, 0)
            data = client.download(job.job_id)
            self.assertEqual(len(data), final.video_bytes)
            path = os.path.join(c.dir, f"py-{model}.mp4")
            with open(path, "wb") as f:
                f.write(data)
            self.check_mp4(path, frames=m["frames"], width=m["width"], height=m["height"])

    def test_previews_per_step(self):
        """preview_width 48: while the job denoises, its snapshots carry a PNG of the step's
        predicted first frame (48 wide, the job's aspect), tagged with its step; none once
        finished; an out-of-range width is refused naming the field."""
        import struct
        import grpc
        c = self.cluster
        client = c.client()
        m = e2e_case.MEDIUM  # 128x128, 4 steps
        job = client.submit(client.request(harness.T2V_MODEL, "previews", m["frames"], m["width"],
                                           m["height"], m["steps"], seed=4, preview_width=48))
        previews = {}
        final = None
        for j in client.watch(job.job_id, timeout=240):
            final = j
            if j.preview_png:
                previews[j.preview_step] = j.preview_png
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(len(final.preview_png), 0, "a finished job keeps no preview")
        # Snapshots coalesce: at least one step's preview is seen, each a 48x48 RGB PNG.
        self.assertTrue(previews, "no preview in any snapshot")
        for step, png in previews.items():
            self.assertTrue(1 <= step <= m["steps"], step)
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            width, height = struct.unpack(">II", png[16:24])
            self.assertEqual((width, height), (48, 48))
        with self.assertRaises(grpc.RpcError) as ctx:
            client.submit(client.request(harness.T2V_MODEL, "bad preview", preview_width=9999,
                                         **dict(zip(("frames", "width", "height", "steps"),
                                                    (5, 64, 64, 2)))), wait_for_ready=False)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("preview_width", ctx.exception.details())

    def test_both_workers_serve(self):
        """Four concurrent jobs spread over both workers, all succeed."""
        c = self.cluster
        client = c.client()
        ids = [client.submit(client.request(harness.T2V_MODEL, f"job {i}", seed=i,
                                            **e2e_case.MEDIUM)).job_id for i in range(4)]
        finals = [client.wait(i, timeout=300) for i in ids]
        self.assertEqual({client.state_name(j) for j in finals}, {"JOB_STATE_SUCCEEDED"})
        self.assertEqual({j.worker_id for j in finals}, {"w0", "w1"})


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
