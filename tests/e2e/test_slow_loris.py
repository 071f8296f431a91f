"""Slow-loris (issue failure 6): 1,000 connections that send half a request and then nothing must
not stop /healthz, /metrics or /readyz on the ops port, nor the job gateway on its own port.
civetweb gives each connection a thread until its request has arrived, so the scheduler runs
http_threads (default 1024) per listener and cuts a request that has not arrived within
http_request_timeout_ms (here 1 s).

Before the fix (4 threads, 30 s timeout, one port) a probe waited 30 s behind 4 slow sockets.
"""
import resource
import socket
import time

import e2e_case
import harness

IDLE = 1000


class SlowLorisTest(e2e_case.ClusterCase):
    WORKERS = 0
    NAME = "slow-loris"

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * IDLE)), hard))
        cls.failed = False
        cls.cluster = harness.Cluster(cls.NAME, workers=0,
                                      scheduler_args=["--http-request-timeout-ms", "1000"])

    def open_idle(self, port, n):
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            socks.append(s)
        return socks

    def test_probes_answer_under_idle_connections(self):
        c = self.cluster
        socks = self.open_idle(c.http_port, IDLE) + self.open_idle(c.api_port, IDLE // 4)
        try:
            time.sleep(0.3)  # every slow connection has been accepted by now
            for path in ("/healthz", "/readyz", "/metrics"):
                start = time.monotonic()
                status, _ = harness.http_get(c.http_port, path, timeout=5)
                seconds = time.monotonic() - start
                self.assertEqual(status, 200, path)
                self.assertLess(seconds, 1.0, f"{path} took {seconds:.2f}s")
            start = time.monotonic()
            status, _ = harness.http_get(c.api_port, "/v1/videos", timeout=5)
            self.assertEqual(status, 200)  # auth off in this cluster: the list answers
            self.assertLess(time.monotonic() - start, 1.0)
            # The slow requests are cut after http_request_timeout_ms (closed, or answered 4xx).
            deadline = time.monotonic() + 10
            outcomes = []
            for s in socks[:50]:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    outcomes.append(s.recv(4096)[:12])
                except socket.timeout:
                    outcomes.append("still open")
                except ConnectionError:
                    outcomes.append(b"")
            cut = [o for o in outcomes if o == b"" or o[:10] in (b"HTTP/1.0 4", b"HTTP/1.1 4")]
            self.assertEqual(len(cut), 50, f"slow requests not cut by the timeout: {outcomes}")
        finally:
            for s in socks:
                s.close()
        self.assertTrue(c.scheduler.alive(), c.scheduler.tail())


if __name__ == "__main__":
    e2e_case.main()
