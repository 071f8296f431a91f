"""Invalid requests → INVALID_ARGUMENT naming the field, and nothing else changes."""
import os

import grpc

import e2e_case
import harness
from e2e_case import SHORT


class InvalidRequestTest(e2e_case.ClusterCase):
    WORKERS = 1
    NAME = "invalid"

    def expect_invalid(self, client, request, field):
        with self.assertRaises(grpc.RpcError) as ctx:
            client.submit(request, wait_for_ready=False)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         ctx.exception.details())
        self.assertIn(field, ctx.exception.details())

    def test_invalid_requests_change_nothing(self):
        c = self.cluster
        client = c.client()
        ok = client.submit(client.request(harness.T2V_MODEL, "valid", **SHORT))
        self.assertEqual(client.state_name(client.wait(ok.job_id, 180)), "JOB_STATE_SUCCEEDED")
        before = client.list()
        r = client.request
        cases = [
            (r(harness.T2V_MODEL, "eighty frames", **dict(SHORT, frames=80)), "num_frames"),
            (r(harness.T2V_MODEL, "odd size", **dict(SHORT, width=70)), "width"),
            (r(harness.T2V_MODEL, "odd size", **dict(SHORT, height=72)), "height"),
            (r(harness.T2V_MODEL, "", **SHORT), "prompt"),
            (r("no-such-model", "unknown model", **SHORT), "model_id"),
            (r(harness.T2V_MODEL, "x" * (1 << 20), **SHORT), "prompt"),
            (r(harness.I2V_MODEL, "corrupt image", image=b"\x89PNG\r\n\x1a\nnot really a png",
               **SHORT), "image"),
            (r(harness.I2V_MODEL, "missing image", **SHORT), "image"),
        ]
        for request, field in cases:
            with self.subTest(field=field, prompt=request.prompt[:20]):
                self.expect_invalid(client, request, field)
        # The same through the C++ CLI: exit code 1 and the code + field on stderr.
        out = os.path.join(c.dir, "never.mp4")
        cli = c.cli("generate", "--model", harness.T2V_MODEL, "--prompt", "cli", "--frames", "80",
                    "--width", "64", "--height", "64", "--out", out)
        self.assertEqual(cli.returncode, 1, cli.stderr)
        self.assertIn("INVALID_ARGUMENT", cli.stderr)
        self.assertIn("num_frames", cli.stderr)
        self.assertFalse(os.path.exists(out))
        after = client.list()
        self.assertEqual(len(after), len(before))
        self.assertEqual([j.SerializeToString() for j in after],
                         [j.SerializeToString() for j in before])

    def test_invalid_utf8_floods_no_log(self):
        """A prompt that is not UTF-8 does not parse (protobuf refuses it); 200 of them in a row
        leave at most a couple of WARNING lines, never ERROR lines, and store nothing."""
        c = self.cluster
        client = c.client()
        before = len(client.list())
        call = client.channel.unary_unary("/turbovid.v1.VideoService/SubmitVideo")
        bad = b"\x0a\x08" + harness.T2V_MODEL.encode() + b"\x1a\x06\xff\xfe bad"
        for _ in range(200):
            with self.assertRaises(grpc.RpcError):
                call(bad, timeout=5)
        with open(c.scheduler.log_path, errors="replace") as f:
            lines = [line for line in f if "invalid UTF-8" in line]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 3, lines)
        self.assertTrue(all(" W " in line for line in lines), lines)
        self.assertEqual(len(client.list()), before)


if __name__ == "__main__":
    e2e_case.main()
