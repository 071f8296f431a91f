"""The web page in headless Chromium (Debian's chromium + chromium-driver, driven over W3C
WebDriver), against a scheduler with auth required and an API key made by `turbovid-scheduler keys
add`: without a key the page shows the 401; the key typed into its key field is kept in
localStorage and sent as `Authorization: Bearer` on every call (events and video too: the video
plays from a blob URL fetched with the key). It lists the models, submits a T2V job, shows its denoising steps, plays the finished
video (readyState and an advancing currentTime) and offers it for download; an I2V job goes through
the page's file upload; the recent-jobs table lists both. A screenshot of the finished job with its
video playing is written to the test's output folder (TV_E2E_OUTPUT, web_ui.png)."""
import base64
import os
import urllib.error
import urllib.request

import e2e_case
import harness
import webdriver


class WebUiTest(e2e_case.ClusterCase):
    NAME = "web-ui"
    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        cls.cluster = harness.Cluster(cls.NAME, workers=cls.WORKERS, tenants=["web"])
        cls.key = cls.cluster.keys["web"]
        found = webdriver.find_browser()
        if found is None:
            raise RuntimeError("chromium and chromedriver are needed (scripts/install-deps.sh)")
        cls.browser = webdriver.Browser(*found, port=harness.free_port(),
                                        log_path=os.path.join(cls.cluster.dir, "chromedriver.log"))

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "browser", None):
            cls.browser.quit()
        super().tearDownClass()

    def page(self):
        b = self.browser
        b.get(f"http://127.0.0.1:{self.cluster.api_port}/")
        b.script("localStorage.clear()")
        b.get(f"http://127.0.0.1:{self.cluster.api_port}/")
        # No key: the page itself loads, its API calls are refused and it says why.
        self.assertIn("no credentials", b.wait(lambda: b.text("#submit-error"), 15,
                                               "the refusal without a key"))
        self.assertEqual(b.script("return document.querySelectorAll('#model option').length"), 0)
        b.type("#api-key", self.key)
        b.script("document.querySelector('#api-key').dispatchEvent(new Event('change'))")
        b.wait(lambda: b.script("return document.querySelectorAll('#model option').length"), 30,
               "the model list")
        self.assertEqual(b.script("return localStorage.getItem('turbovid.apiKey')"), self.key)
        # The key survives a reload (localStorage).
        b.get(f"http://127.0.0.1:{self.cluster.api_port}/")
        self.assertEqual(b.script("return document.querySelector('#api-key').value"), self.key)
        b.wait(lambda: b.script("return document.querySelectorAll('#model option').length"), 30,
               "the model list after a reload")
        return b

    def choose(self, b, value):
        b.script("const s = document.querySelector('#model'); s.value = arguments[0];"
                 "s.dispatchEvent(new Event('change'));", value)
        self.assertEqual(b.script("return document.querySelector('#model').value"), value)

    def wait_final(self, b, timeout=180):
        def final():  # one read: the state may change between two
            state = b.text("#job-state")
            return state if state in ("SUCCEEDED", "FAILED", "CANCELLED") else None
        return b.wait(final, timeout, "the job to finish")

    def test_t2v_then_i2v_through_the_page(self):
        b = self.page()
        self.assertIn("1 cpu", b.wait(lambda: b.text("#workers"), 15, "the worker count"))
        self.choose(b, "tiny-t2v:turbo")
        self.assertTrue(b.script("return document.querySelector('#image-row').hidden"))
        b.type("#prompt", "a red fox running through snow")
        m = e2e_case.MEDIUM  # long enough (~1.5 s) that the events stream shows its steps
        b.type("#frames", m["frames"])
        b.type("#width", m["width"])
        b.type("#height", m["height"])
        b.type("#steps", m["steps"])
        b.click("#submit")
        self.assertEqual(self.wait_final(b), "SUCCEEDED", b.text("#job-error"))
        job_id = b.text("#job-id")
        steps = b.script("return [...document.querySelectorAll('#job-steps li')]"
                         ".map(e => e.textContent)")
        self.assertTrue(steps, "no denoising step was shown")
        self.assertTrue(all(s.endswith(f"/{m['steps']}") for s in steps), steps)
        self.assertEqual(b.script("return document.querySelector('#job-progress').value"), 100)

        # The video plays: data for the current frame at least, and the clock moves.
        state = b.wait(lambda: b.script(
            "const v = document.querySelector('#video');"
            "return v.readyState >= 2 && !v.error && [v.readyState, v.currentTime, v.duration];"),
            30, "the video to load")
        self.assertAlmostEqual(state[2], m["frames"] / 16, delta=0.1)
        t0 = b.script("return document.querySelector('#video').currentTime")
        b.wait(lambda: b.script("return document.querySelector('#video').currentTime") != t0,
               10, "currentTime to advance")
        out_dir = os.environ.get("TV_E2E_OUTPUT", self.cluster.dir)
        os.makedirs(out_dir, exist_ok=True)
        shot = os.path.join(out_dir, "web_ui.png")
        png = b.screenshot(shot)
        self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10000, len(png))
        print(f"screenshot: {shot}")

        # The video came with the key: it plays from a blob URL, and the download link is the
        # same blob, holding the MP4 the job reported. The video route itself wants the key.
        src = b.script("return document.querySelector('#video').src")
        href = b.script("return document.querySelector('#download').href")
        self.assertTrue(src.startswith("blob:") and href == src, (src, href))
        self.assertEqual(b.script("return document.querySelector('#download')"
                                  ".getAttribute('download')"), f"{job_id}.mp4")
        data = b.script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.arrayBuffer()).then(a => {"
            "  let s = ''; for (const x of new Uint8Array(a)) s += String.fromCharCode(x);"
            "  done(btoa(s)); });", href, asynchronous=True)
        path = os.path.join(self.cluster.dir, "downloaded.mp4")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        self.assertEqual(harness.ffprobe(path)[1:], (m["width"], m["height"], m["frames"]))
        url = f"http://127.0.0.1:{self.cluster.api_port}/turbovid/v1/jobs/{job_id}/video"
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=30)
        self.assertEqual(refused.exception.code, 401)
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            with open(path, "rb") as f:
                self.assertEqual(r.read(), f.read())

        # I2V: the image goes through the page's file input.
        png_path = os.path.join(self.cluster.dir, "input.png")
        with open(png_path, "wb") as f:
            f.write(harness.make_png(64, 64))
        self.choose(b, "tiny-i2v:turbo")
        self.assertFalse(b.script("return document.querySelector('#image-row').hidden"))
        b.type("#image", png_path, clear=False)
        b.type("#prompt", "waves on a lake")
        b.click("#submit")
        b.wait(lambda: b.text("#job-id") != job_id, 30, "the I2V job to show")
        self.assertEqual(self.wait_final(b), "SUCCEEDED", b.text("#job-error"))
        i2v_id = b.text("#job-id")
        # The I2V job's own info (the page clears the previous job's when it shows a new one).
        b.wait(lambda: "64x64" in b.text("#video-info"), 10, "the I2V video info")

        # Recent jobs lists both, newest first.
        b.click("#refresh")
        rows = b.wait(lambda: (lambda r: len(r) >= 2 and r)(b.script(
            "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.jobId)")),
            15, "the recent jobs")
        self.assertEqual(rows[:2], [i2v_id, job_id])


if __name__ == "__main__":
    e2e_case.main()
