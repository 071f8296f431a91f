"""The OpenAI-compatible videos API against a real scheduler and CPU worker, driven by the official
`openai` npm SDK (tests/e2e/openai/videos_sdk_test.cjs: create / retrieve / downloadContent /
list / delete, an I2V create with input_reference, errors), installed from the committed lockfile
by scripts/npm-deps.sh. The MP4s the SDK downloaded pass ffprobe with the size and duration the
video objects reported. JSON creates (curl's way, input_reference as a data: URL) and the error
shape are checked here with urllib."""
import base64
import json
import os
import subprocess
import urllib.error
import urllib.request

import e2e_case
import harness

SDK_DIR = os.path.join(harness.SOURCE_DIR, "tests/e2e/openai")


class OpenAiSdkTest(e2e_case.ClusterCase):
    NAME = "openai"
    WORKERS = 1

    def post_json(self, path, body):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.cluster.api_port}{path}", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_official_sdk(self):
        deps = os.path.join(harness.BUILD_DIR, "tests/e2e/openai-sdk")
        subprocess.run([os.path.join(harness.SOURCE_DIR, "scripts/npm-deps.sh"), SDK_DIR, deps],
                       check=True, timeout=300)
        png = os.path.join(self.cluster.dir, "input.png")
        with open(png, "wb") as f:
            f.write(harness.make_png(96, 64))  # aspect 2:3 -> the I2V size follows it
        env = dict(os.environ, TV_OPENAI_BASE_URL=f"http://127.0.0.1:{self.cluster.api_port}/v1",
                   TV_PNG=png, TV_OUT=self.cluster.dir)
        r = subprocess.run(["node", os.path.join(deps, "videos_sdk_test.cjs")], env=env,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}")
        result = json.loads(r.stdout.strip().splitlines()[-1])

        t2v = result["t2v"]
        self.assertEqual(harness.ffprobe(t2v["file"])[1:], (64, 64, 5))
        self.assertIn("queued", t2v["statuses"])
        # 64x64's area in the image's 3:2 aspect: h = round16(sqrt(4096 * 2/3)) = 48,
        # w = round16(sqrt(4096 * 3/2)) = 80; the video is rendered at the size reported.
        i2v = result["i2v"]
        self.assertEqual(i2v["size"], "80x48")
        self.assertEqual(harness.ffprobe(i2v["file"])[1:], (80, 48, 5))
        self.assertEqual(harness.probe(i2v["file"])[1:], (80, 48, 5))
        self.assertIn("193 frames", result["errors"]["seconds"]["message"])
        self.assertIn("tiny-t2v", result["errors"]["model"]["message"])  # lists the catalog

    def test_json_create_and_errors(self):
        png = harness.make_png(64, 64)
        data_url = "data:image/png;base64," + base64.b64encode(png).decode()
        status, video = self.post_json("/v1/videos", {
            "prompt": "a lake", "model": "tiny-i2v", "seconds": 0.25,
            "input_reference": {"image_url": data_url}})
        self.assertEqual(status, 200, video)
        self.assertEqual((video["object"], video["model"], video["seconds"], video["size"]),
                         ("video", "tiny-i2v", "0.25", "64x64"))
        client = self.cluster.client()
        final = client.wait(video["id"], timeout=120)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)

        # Without a model: the first catalog model of the request's kind that a worker serves.
        status, video = self.post_json("/v1/videos", {"prompt": "a fox"})
        self.assertEqual((status, video["model"]), (200, "tiny-t2v"), video)
        status, video = self.post_json("/v1/videos", {"prompt": "a lake",
                                                      "input_reference": {"image_url": data_url}})
        self.assertEqual((status, video["model"]), (200, "tiny-i2v"), video)

        for body, param in (({"model": "tiny-t2v"}, "prompt"),
                            ({"prompt": "x", "model": "tiny-t2v", "seconds": "0.3"}, "seconds"),
                            ({"prompt": "x", "model": "tiny-t2v", "size": "big"}, "size"),
                            ({"prompt": "x", "model": "tiny-t2v:fast"}, "model"),
                            ({"prompt": "x", "model": "tiny-t2v", "quality": "hd"}, "quality"),
                            ({"prompt": "x", "input_reference": {"image_url": "https://x/a.png"}},
                             "input_reference")):
            status, error = self.post_json("/v1/videos", body)
            self.assertEqual(status, 400, error)
            self.assertEqual(set(error), {"error"})
            self.assertEqual(set(error["error"]), {"message", "type", "param", "code"})
            self.assertEqual(error["error"]["param"], param, error)
            self.assertEqual(error["error"]["type"], "invalid_request_error")
            self.assertTrue(error["error"]["message"].startswith(param), error)


if __name__ == "__main__":
    e2e_case.main()
