"""I2V images near the admission limit: a ~9 MiB incompressible PNG (under the 10 MiB limit of
common/limits.h, over gRPC's 4 MiB default) runs on the first attempt through Python and the C++
CLI, and the scheduler stays up; a 10.5 MiB one is refused at submit with INVALID_ARGUMENT naming
the image field."""
import os
import random
import re
import struct
import zlib

import grpc

import e2e_case
import harness
import tv_client
from e2e_case import SHORT

MIB = 1 << 20


def noise_png(min_bytes, seed):
    """A square RGB PNG of random pixels, stored uncompressed (zlib level 0), of at least
    `min_bytes` bytes: the size on the wire is the size admission sees."""
    side = 16
    while side * (1 + 3 * side) < min_bytes:
        side += 16
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(3 * side) for _ in range(side))

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 0))
            + chunk(b"IEND", b""))


def header_limits():
    """name -> bytes for the `inline constexpr int64_t kName = A << B;` lines of common/limits.h."""
    with open(os.path.join(harness.SOURCE_DIR, "common/limits.h")) as f:
        text = f.read()
    return {m[1]: int(m[2]) << int(m[3]) for m in re.finditer(
        r"constexpr int64_t (k\w+) = (\d+) << (\d+);", text)}


class LargeImageTest(e2e_case.ClusterCase):
    WORKERS = 1
    NAME = "large-image"

    def test_python_client_channel_matches_the_limits_header(self):
        limits = header_limits()
        self.assertEqual(tv_client.GRPC_MESSAGE_BYTES, limits["kGrpcMessageBytes"])
        self.assertLess(limits["kMaxImageBytes"] + limits["kMessageSlackBytes"],
                        tv_client.GRPC_MESSAGE_BYTES)

    def test_image_under_the_limit_runs_and_over_it_is_refused(self):
        c = self.cluster
        client = c.client()
        image = noise_png(int(8.75 * MIB), seed=7)
        self.assertTrue(8 * MIB <= len(image) <= 9.5 * MIB, len(image))
        job = client.submit(client.request(harness.I2V_MODEL, "a noisy fox", image=image, **SHORT))
        final = client.wait(job.job_id, timeout=300)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(final.attempts, 1, "the worker lost its stream on AssignTask")
        self.assertTrue(c.scheduler.alive(), c.scheduler.tail())
        video = os.path.join(c.dir, "python.mp4")
        with open(video, "wb") as f:
            f.write(client.download(job.job_id))
        self.assertEqual(harness.probe(video)[1:], (SHORT["width"], SHORT["height"],
                                                    SHORT["frames"]))

        # The C++ CLI sends the same image.
        path = os.path.join(c.dir, "noise.png")
        with open(path, "wb") as f:
            f.write(image)
        out = os.path.join(c.dir, "cli.mp4")
        c.cli("generate", "--model", harness.I2V_MODEL, "--prompt", "cli fox", "--image", path,
              "--frames", str(SHORT["frames"]), "--width", str(SHORT["width"]), "--height",
              str(SHORT["height"]), "--steps", str(SHORT["steps"]), "--out", out, check=True)
        self.assertTrue(os.path.getsize(out) > 0)

        big = noise_png(int(10.5 * MIB), seed=8)
        with self.assertRaises(grpc.RpcError) as ctx:
            client.submit(client.request(harness.I2V_MODEL, "too big", image=big, **SHORT),
                          wait_for_ready=False)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         ctx.exception.details())
        self.assertIn("image", ctx.exception.details())
        self.assertTrue(c.scheduler.alive(), c.scheduler.tail())
        self.assertEqual(len(client.list(model=harness.I2V_MODEL)), 2)


if __name__ == "__main__":
    e2e_case.main()
