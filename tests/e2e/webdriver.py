"""A small W3C WebDriver client over the standard library (urllib + json) for the web page test:
starts Debian's chromedriver with headless Chromium and drives it (navigate, find, type, click,
run scripts, screenshots)."""
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element reference key


def find_browser():
    """(chromium, chromedriver) paths, or None when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None and os.path.exists("/usr/lib/chromium/chromium"):
        chromium = "/usr/lib/chromium/chromium"
    if driver is None and os.path.exists("/usr/lib/chromium/chromedriver"):
        driver = "/usr/lib/chromium/chromedriver"
    return (chromium, driver) if chromium and driver else None


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self, chromium, chromedriver, port, log_path, width=1280, height=1000):
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "ab")
        self.driver = subprocess.Popen([chromedriver, f"--port={port}"], stdout=self.log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline or self.driver.poll() is not None:
                self.quit()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}",
                "--no-first-run", "--disable-extensions"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": args}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return json.loads(r.read().decode())["value"]
        except urllib.error.HTTPError as e:
            raise WebDriverError(f"{method} {path}: {e.code} {e.read().decode()[:500]}") from None

    def _session(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self._session("POST", "/url", {"url": url})

    def find(self, css):
        return self._session("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text, clear=True):
        element = self.find(css)
        if clear:
            self._session("POST", f"/element/{element}/clear", {})
        self._session("POST", f"/element/{element}/value", {"text": str(text)})

    def click(self, css):
        self._session("POST", f"/element/{self.find(css)}/click", {})

    def script(self, source, *args, asynchronous=False):
        """asynchronous: the script calls its last argument with the result (W3C execute/async)."""
        return self._session("POST", "/execute/async" if asynchronous else "/execute/sync",
                             {"script": source, "args": list(args)})

    def text(self, css):
        return self.script("const e = document.querySelector(arguments[0]); "
                           "return e ? e.textContent : null;", css)

    def wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.1)
        raise WebDriverError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def screenshot(self, path):
        data = base64.b64decode(self._session("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(data)
        return data

    def quit(self):
        try:
            if getattr(self, "session", None):
                self._session("DELETE", "")
        except (OSError, WebDriverError):
            pass
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
        self.log.close()
