"""Progressive output (SubmitVideoRequest.progressive): GetVideo and the HTTP download of a job
that is still running stream its fragmented MP4 as the worker decodes it. The client's first
bytes arrive before the job reaches SUCCEEDED (wall-clock times on this one host), the first
chunk alone and the whole file are valid MP4s for ffprobe with the right frame counts, what was
streamed equals the stored file, a cancel mid-stream ends the stream with CANCELLED, and the
scheduler exports the first-bytes histogram."""
import json
import os
import subprocess
import threading
import time
import urllib.request

import grpc

import e2e_case
import harness

# 5 latent frames at 256x256: the tiny model's VAE decodes each in a visible moment, so the
# first fragment leaves well before the last one.
JOB = dict(frames=17, width=256, height=256, steps=2)


class GrpcReader(threading.Thread):
    """Reads GetVideo to its end, timing the first chunk (time.time()) and keeping the chunks."""

    def __init__(self, client, job_id, on_first=None):
        super().__init__(daemon=True)
        self.client, self.job_id, self.on_first = client, job_id, on_first
        self.chunks, self.first_at, self.code, self.details = [], None, None, ""
        self.total = 0

    def run(self):
        try:
            for chunk in self.client.stub.GetVideo(
                    self.client.pb.GetVideoRequest(job_id=self.job_id), timeout=240):
                if self.first_at is None:
                    self.first_at = time.time()
                    if self.on_first:
                        self.on_first()
                assert chunk.offset == sum(len(c) for c in self.chunks), chunk.offset
                self.total = chunk.total_bytes
                if chunk.data:
                    self.chunks.append(chunk.data)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()

    def data(self):
        return b"".join(self.chunks)


class HttpReader(threading.Thread):
    """Reads the native gateway's video download to its end, timing the first bytes."""

    def __init__(self, port, job_id):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/turbovid/v1/jobs/{job_id}/video"
        self.data, self.first_at, self.error = b"", None, None

    def run(self):
        try:
            with urllib.request.urlopen(self.url, timeout=240) as r:
                while True:
                    piece = r.read1(1 << 16)
                    if not piece:
                        return
                    if self.first_at is None:
                        self.first_at = time.time()
                    self.data += piece
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


class ProgressiveTest(e2e_case.ClusterCase):
    WORKERS = 1
    NAME = "progressive"

    def write(self, name, data):
        path = os.path.join(self.cluster.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_streams_while_running_and_ends_as_the_stored_file(self):
        c = self.cluster
        client = c.client()
        job = client.submit(client.request(harness.T2V_MODEL, "a progressive fox", seed=5,
                                           progressive=True, **JOB))
        # Both readers connect while the job is queued or denoising: they wait for bytes.
        grpc_reader = GrpcReader(client, job.job_id)
        http_reader = HttpReader(c.api_port, job.job_id)
        cli_out = os.path.join(c.dir, "cli.mp4")
        cli = subprocess.Popen([harness.binary("turbovid"), "download", "--scheduler", c.address,
                                job.job_id, "-o", cli_out], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        grpc_reader.start()
        http_reader.start()
        final = client.wait(job.job_id, timeout=240)
        grpc_reader.join(60)
        http_reader.join(60)
        cli_log = cli.communicate(timeout=60)[0]
        self.assertEqual(cli.returncode, 0, cli_log)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED")
        self.assertEqual(grpc_reader.code, grpc.StatusCode.OK, grpc_reader.details)
        self.assertIsNone(http_reader.error)
        # The first bytes came before the job was final (times on this host).
        print(f"first bytes {final.finished_unix_seconds - grpc_reader.first_at:.3f} s (gRPC), "
              f"{final.finished_unix_seconds - http_reader.first_at:.3f} s (HTTP) before "
              f"SUCCEEDED; {len(grpc_reader.chunks)} chunks, {final.video_bytes} bytes")
        self.assertLess(grpc_reader.first_at, final.finished_unix_seconds)
        self.assertLess(http_reader.first_at, final.finished_unix_seconds)
        self.assertGreater(len(grpc_reader.chunks), 1)

        streamed = grpc_reader.data()
        self.assertEqual(len(streamed), final.video_bytes)
        self.assertEqual(grpc_reader.total, final.video_bytes)  # the last chunk says the size
        # The CLI's download of the running job waited for the end and checked that size too.
        with open(cli_out, "rb") as f:
            self.assertEqual(f.read(), streamed)
        self.assertEqual(http_reader.data, streamed)
        self.assertEqual(client.download(job.job_id), streamed)  # the stored file, after the end

        # The first chunk (ftyp, moov and the first latent frame's fragment) plays alone.
        first = self.write("first.mp4", grpc_reader.chunks[0])
        codec, width, height, frames = harness.ffprobe(first)
        self.assertEqual((codec, width, height), ("h264", 256, 256))
        self.assertGreaterEqual(frames, 1)
        self.assertLess(frames, JOB["frames"])
        whole = self.write("whole.mp4", streamed)
        self.assertEqual(harness.ffprobe(whole), ("h264", 256, 256, JOB["frames"]))
        self.assertEqual(harness.probe(whole), ("h264", 256, 256, JOB["frames"]))
        self.assertIn(b"moof", streamed)
        self.assertIn(b"mvex", grpc_reader.chunks[0])

        # A reader after the end gets the whole stored file; a non-progressive job is unchanged.
        plain = client.submit(client.request(harness.T2V_MODEL, "plain", **e2e_case.SHORT))
        with self.assertRaises(grpc.RpcError) as ctx:
            client.download(plain.job_id)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        client.wait(plain.job_id, timeout=120)
        self.assertNotIn(b"moof", client.download(plain.job_id))

        text = c.metrics(c.http_port)
        values = harness.metric_values(text, "turbovid_progressive_first_bytes_seconds_count")
        self.assertGreaterEqual(sum(v for _, v in values), 1, values)
        total = sum(v for _, v in harness.metric_values(
            text, "turbovid_progressive_first_bytes_seconds_sum"))
        print(f"last denoising step -> first fragment at the scheduler: "
              f"{total / sum(v for _, v in values):.3f} s on average (tiny CPU model, 256x256)")

    def test_openai_create_takes_progressive_and_content_streams(self):
        c = self.cluster
        client = c.client()
        status, text = harness.api_call(c.api_port, "/v1/videos", "POST", json.dumps(
            {"prompt": "x", "model": harness.T2V_MODEL, "progressive": "yes"}))
        self.assertEqual(status, 400, text)
        self.assertIn("progressive", text)
        # "1" s = 17 frames (4k + 1 at 16 fps).
        status, text = harness.api_call(c.api_port, "/v1/videos", "POST", json.dumps(
            {"prompt": "an openai fox", "model": harness.T2V_MODEL, "seconds": "1",
             "size": "256x256", "progressive": True}))
        self.assertEqual(status, 200, text)
        video_id = json.loads(text)["id"]
        reader = HttpReader(c.api_port, video_id)
        reader.url = f"http://127.0.0.1:{c.api_port}/v1/videos/{video_id}/content"
        reader.start()
        final = client.wait(video_id, timeout=240)
        reader.join(60)
        self.assertTrue(final.request.progressive)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED")
        self.assertIsNone(reader.error)
        self.assertLess(reader.first_at, final.finished_unix_seconds)
        self.assertEqual(reader.data, client.download(video_id))

    def test_cancel_mid_stream_ends_the_stream_cancelled(self):
        c = self.cluster
        client = c.client()
        job = client.submit(client.request(harness.T2V_MODEL, "cancelled midway", seed=6,
                                           progressive=True, **JOB))
        reader = GrpcReader(client, job.job_id, on_first=lambda: client.cancel(job.job_id))
        reader.start()
        final = client.wait(job.job_id, timeout=240)
        reader.join(60)
        self.assertIsNotNone(reader.first_at, "no bytes before the cancel")
        self.assertEqual(reader.code, grpc.StatusCode.CANCELLED, reader.details)
        self.assertIn("cancelled", reader.details)
        self.assertEqual(client.state_name(final), "JOB_STATE_CANCELLED")
        # Later readers hear the same.
        with self.assertRaises(grpc.RpcError) as ctx:
            client.download(job.job_id)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)


if __name__ == "__main__":
    e2e_case.main()
