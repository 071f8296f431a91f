"""TLS on every listener of the scheduler (gRPC, the ops HTTP port, the job HTTP port), with
certificates this test makes with the `openssl` command: two CAs, server certificates for
127.0.0.1 from each, and client certificates.

- TLS: the Python client and the CLI (--ca-cert) reach gRPC, a plaintext client does not; a
  worker dials with --scheduler-ca and runs a job. /healthz, /readyz and /metrics answer over
  HTTPS (Python ssl), a job is submitted through the JSON gateway and downloaded with curl over
  HTTPS with an API key; plaintext HTTP to either port gets no answer. Slow-loris on the TLS
  ports (silent sockets, half a ClientHello) does not delay the probes.
- Mutual TLS (tls.client_ca_file): a gRPC or job-HTTP client without a certificate signed by the
  CA is refused at the handshake; with one (and the worker with its own), jobs run. The ops port
  asks for no client certificate (probes have none).
- Reload: the certificate files (a Kubernetes-style `..data` link) are swapped to a certificate
  of the second CA; new handshakes on gRPC and both HTTP ports present it within seconds, with no
  restart, and the worker's stream stays up and runs a job. Then a broken certificate and a key
  that does not match: each is logged as an ERROR, and the previous certificate stays in use.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

import grpc

import e2e_case
import harness
from e2e_case import SHORT


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder):
    """ca.pem, otherca.pem; server.pem/.key (from ca) and server2.pem/.key (from otherca), both
    with SAN 127.0.0.1 and localhost; client.pem/.key (ca), other.pem/.key (otherca);
    bundle.pem = both CAs."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=turbovid test {ca}", cwd=folder)
    with open(os.path.join(folder, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ca, ext in (("server", "ca", ["-extfile", "san.ext"]),
                          ("server2", "otherca", ["-extfile", "san.ext"]),
                          ("client", "ca", []), ("other", "otherca", [])):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *ext, cwd=folder)
    with open(os.path.join(folder, "bundle.pem"), "w") as out:
        for ca in ("ca.pem", "otherca.pem"):
            with open(os.path.join(folder, ca)) as f:
                out.write(f.read())
    return {n: os.path.join(folder, n) for n in os.listdir(folder)}


def der(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def context(cafile, client_cert=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    return ctx


def peer_certificate(port, client_cert=None, alpn=None):
    """The DER certificate a new TLS handshake on `port` presents (no verification)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def https(port, path, ctx, method="GET", body=None, key=None, timeout=10):
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", method=method,
                                 data=body.encode() if body is not None else None)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def plaintext_answer(port):
    """What a plaintext HTTP request to `port` gets back (b"" = closed without an answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return s.recv(4096)
        except (ConnectionError, socket.timeout):
            return b""


class TlsCase(e2e_case.ClusterCase):
    WORKERS = 1
    MUTUAL = False
    EXTRA_ARGS = ()

    @classmethod
    def server_files(cls):
        """The files the scheduler is pointed at (the reload test swaps them)."""
        return cls.pki["server.pem"], cls.pki["server.key"]

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        cls.pki_dir = tempfile.mkdtemp(prefix="tv-e2e-pki-")
        cls.pki = make_pki(cls.pki_dir)
        p = cls.pki
        cert, key = cls.server_files()
        tls = ["--tls-cert", cert, "--tls-key", key] + list(cls.EXTRA_ARGS)
        # The bundle: the worker keeps (re)connecting after a reload to the second CA.
        worker = ["--scheduler-ca", p["bundle.pem"]]
        cls.client_cert = None
        if cls.MUTUAL:
            tls += ["--tls-client-ca", p["ca.pem"]]
            worker += ["--client-cert", p["client.pem"], "--client-key", p["client.key"]]
            cls.client_cert = (p["client.pem"], p["client.key"])
        cls.tls_args = tls
        cls.http_ctx = context(p["bundle.pem"])
        cls.cluster = harness.Cluster(cls.NAME, workers=0, scheduler_args=tls,
                                      worker_args=worker, tenants=["alice"],
                                      http_context=cls.http_ctx)
        cls.cluster.start_worker("w0", wait=True)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.pki_dir, ignore_errors=True)

    def client(self, ca="ca.pem", **kw):
        c = harness.tv_client.VideoClient(self.cluster.address, api_key=self.cluster.keys["alice"],
                                          ca_cert=self.pki[ca], **kw)
        self.cluster._clients.append(c)
        return c

    def run_job(self, client):
        job = client.submit(client.request(harness.T2V_MODEL, "over tls", **SHORT))
        final = client.wait(job.job_id, timeout=180)
        self.assertEqual(client.state_name(final), "JOB_STATE_SUCCEEDED", final.error)
        self.assertEqual(len(client.download(job.job_id)), final.video_bytes)
        return final


class TlsTest(TlsCase):
    NAME = "tls"
    EXTRA_ARGS = ("--http-request-timeout-ms", "2000")

    def test_clients_and_workers_over_tls(self):
        c = self.cluster
        self.run_job(self.client())
        r = c.cli("list", "--api-key", c.keys["alice"], "--ca-cert", self.pki["ca.pem"])
        self.assertEqual(r.returncode, 0, r.stderr)
        plain = c.client(c.keys["alice"])
        with self.assertRaises(grpc.RpcError) as ctx:
            plain.stub.ListJobs(plain.pb.ListJobsRequest(), timeout=5)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_https_on_both_http_listeners(self):
        c = self.cluster
        for path in ("/healthz", "/readyz", "/metrics"):
            status, body = https(c.http_port, path, self.http_ctx)
            self.assertEqual(status, 200, path)
        self.assertIn(b"turbovid_scheduler_up 1", https(c.http_port, "/metrics", self.http_ctx)[1])
        for port in (c.http_port, c.api_port):  # plaintext: refused, never an HTTP answer
            self.assertFalse(plaintext_answer(port).startswith(b"HTTP/"))
            self.assertEqual(harness.http_get(port, "/healthz")[0], 0)
        # The job gateway over HTTPS: 401 without a key, a job submitted and downloaded with one.
        status, body = https(c.api_port, "/turbovid/v1/jobs", self.http_ctx)
        self.assertEqual(status, 401, body)
        request = json.dumps({"model_id": harness.T2V_MODEL, "prompt": "over https",
                              "num_frames": 5, "num_steps": 2,
                              "size": {"width_pixels": 64, "height_pixels": 64}})
        alice = c.keys["alice"]
        status, body = https(c.api_port, "/turbovid/v1/jobs", self.http_ctx, "POST", request,
                             key=alice)
        self.assertEqual(status, 200, body)
        job_id = json.loads(body)["job_id"]
        deadline = time.monotonic() + 180
        job = {}
        while time.monotonic() < deadline:
            job = json.loads(https(c.api_port, f"/turbovid/v1/jobs/{job_id}", self.http_ctx,
                                   key=alice)[1])
            if job.get("state") in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED",
                                    "JOB_STATE_CANCELLED"):
                break
            time.sleep(0.2)
        self.assertEqual(job.get("state"), "JOB_STATE_SUCCEEDED", job)
        out = os.path.join(c.dir, "https.mp4")
        r = subprocess.run(["curl", "-sS", "-f", "--cacert", self.pki["ca.pem"], "-o", out,
                            "-H", f"Authorization: Bearer {alice}",
                            f"https://127.0.0.1:{c.api_port}/turbovid/v1/jobs/{job_id}/video"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.getsize(out), int(job["video_bytes"]))
        with open(out, "rb") as f:
            self.assertEqual(f.read(12)[4:8], b"ftyp")
        # curl refuses a server it cannot verify (the other CA).
        r = subprocess.run(["curl", "-sS", "--cacert", self.pki["otherca.pem"],
                            f"https://127.0.0.1:{c.http_port}/healthz"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)

    def test_slow_handshakes_do_not_block_probes(self):
        c = self.cluster
        socks = []
        try:
            for port, n in ((c.http_port, 300), (c.api_port, 100)):
                for i in range(n):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    if i % 2:
                        s.sendall(b"\x16\x03\x01\x02\x00\x01")  # half a ClientHello, then nothing
                    socks.append(s)
            time.sleep(0.3)
            for path in ("/healthz", "/readyz", "/metrics"):
                start = time.monotonic()
                status, _ = https(c.http_port, path, self.http_ctx, timeout=5)
                self.assertEqual(status, 200, path)
                self.assertLess(time.monotonic() - start, 1.0, path)
            start = time.monotonic()
            self.assertEqual(https(c.api_port, "/healthz", self.http_ctx, timeout=5)[0], 200)
            self.assertLess(time.monotonic() - start, 1.0)
            # Handshakes not done within http_request_timeout_ms (2 s) are cut.
            deadline = time.monotonic() + 8
            cut = 0
            for s in socks[:40]:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    if s.recv(4096) == b"":
                        cut += 1
                except socket.timeout:
                    pass
                except ConnectionError:
                    cut += 1
            self.assertEqual(cut, 40)
        finally:
            for s in socks:
                s.close()
        self.assertTrue(c.scheduler.alive(), c.scheduler.tail())


class MutualTlsTest(TlsCase):
    NAME = "mtls"
    MUTUAL = True

    def test_certificates_are_required(self):
        c = self.cluster
        p = self.pki
        self.run_job(self.client(client_cert=(p["client.pem"], p["client.key"])))
        for name, cert in (("none", None), ("other CA", (p["other.pem"], p["other.key"]))):
            with self.subTest(name):
                client = self.client(client_cert=cert)
                with self.assertRaises(grpc.RpcError) as ctx:
                    client.stub.ListJobs(client.pb.ListJobsRequest(), timeout=5)
                self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
                # The job HTTP port refuses the handshake too.
                ctx_http = context(p["ca.pem"], cert)
                with self.assertRaises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
                    https(c.api_port, "/turbovid/v1/jobs", ctx_http, key=c.keys["alice"])
        ok = context(p["ca.pem"], (p["client.pem"], p["client.key"]))
        status, body = https(c.api_port, "/turbovid/v1/jobs", ok, key=c.keys["alice"])
        self.assertEqual(status, 200, body)
        # The ops port asks for no client certificate.
        self.assertEqual(https(c.http_port, "/readyz", context(p["ca.pem"]))[0], 200)


class ReloadTest(TlsCase):
    """mTLS with the server's files behind a swapped `..data` link, as a Kubernetes Secret."""
    NAME = "tls-reload"
    MUTUAL = True

    @classmethod
    def server_files(cls):
        cls.live = os.path.join(cls.pki_dir, "live")
        os.mkdir(cls.live)
        cls.generation = 0
        cls.publish(cls.pki["server.pem"], cls.pki["server.key"])
        os.symlink("..data/tls.crt", os.path.join(cls.live, "tls.crt"))
        os.symlink("..data/tls.key", os.path.join(cls.live, "tls.key"))
        return os.path.join(cls.live, "tls.crt"), os.path.join(cls.live, "tls.key")

    @classmethod
    def publish(cls, cert_pem, key_pem, cert_text=None):
        """A new generation directory with both files, then an atomic swap of `..data`."""
        cls.generation += 1
        gen = f"..gen{cls.generation}"
        os.mkdir(os.path.join(cls.live, gen))
        for src, name, text in ((cert_pem, "tls.crt", cert_text), (key_pem, "tls.key", None)):
            with open(os.path.join(cls.live, gen, name), "w") as f:
                if text is not None:
                    f.write(text)
                else:
                    with open(src) as s:
                        f.write(s.read())
        tmp = os.path.join(cls.live, "..data_tmp")
        os.symlink(gen, tmp)
        os.replace(tmp, os.path.join(cls.live, "..data"))

    def presented(self):
        c = self.cluster
        return {"grpc": peer_certificate(c.grpc_port, self.client_cert, alpn=["h2"]),
                "ops": peer_certificate(c.http_port),
                "api": peer_certificate(c.api_port, self.client_cert)}

    def wait_presented(self, want_pem, timeout=15):
        want = der(want_pem)
        deadline = time.monotonic() + timeout
        seen = {}
        while time.monotonic() < deadline:
            seen = self.presented()
            if all(v == want for v in seen.values()):
                return
            time.sleep(0.2)
        self.fail(f"not every listener presents {os.path.basename(want_pem)} after {timeout}s: "
                  + ", ".join(f"{k}={'new' if v == want else 'old'}" for k, v in seen.items()))

    def log(self):
        with open(self.cluster.scheduler.log_path, errors="replace") as f:
            return f.read()

    def test_reload_without_restart(self):
        c = self.cluster
        p = self.pki
        pid = c.scheduler.pid
        self.wait_presented(p["server.pem"], timeout=1)
        client = self.client(ca="bundle.pem", client_cert=self.client_cert)
        self.run_job(client)
        # A gRPC connection opened before the reload keeps working after it.
        self.assertEqual(client.stub.ListJobs(client.pb.ListJobsRequest(), timeout=5).jobs[0]
                         .job_id != "", True)

        start = time.monotonic()
        self.publish(p["server2.pem"], p["server2.key"])
        self.wait_presented(p["server2.pem"])
        took = time.monotonic() - start
        print(f"reload: every listener presents the new certificate after {took:.1f}s")
        self.assertIn("tls: reloaded", self.log())
        # A client trusting only the new CA gets in; one trusting only the old CA is refused.
        self.assertEqual(len(self.client(ca="otherca.pem", client_cert=self.client_cert).stub
                             .ListJobs(client.pb.ListJobsRequest(), timeout=10).jobs), 1)
        old = self.client(ca="ca.pem", client_cert=self.client_cert)
        with self.assertRaises(grpc.RpcError):
            old.stub.ListJobs(old.pb.ListJobsRequest(), timeout=5)
        # The connection made before the reload and the worker's stream still work.
        self.run_job(client)
        self.assertEqual(c.scheduler.pid, pid)
        ctx = context(p["otherca.pem"], self.client_cert)
        self.assertEqual(https(c.api_port, "/turbovid/v1/jobs", ctx, key=c.keys["alice"])[0], 200)

        # Broken files: logged as ERROR, the previous certificate stays.
        broken = ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                  "-----END CERTIFICATE-----\n")
        self.publish(p["server2.pem"], p["server2.key"], cert_text=broken)
        mismatch_gen = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.log().count("tls: reload refused") < 1:
            time.sleep(0.2)
        self.publish(p["server.pem"], p["server2.key"])  # a key that does not match
        mismatch_gen = self.generation
        while time.monotonic() < deadline and self.log().count("tls: reload refused") < 2:
            time.sleep(0.2)
        os.kill(pid, signal.SIGHUP)  # a forced re-read refuses them again
        while time.monotonic() < deadline and self.log().count("tls: reload refused") < 3:
            time.sleep(0.2)
        log = self.log()
        refused = [line for line in log.splitlines() if "tls: reload refused" in line]
        self.assertGreaterEqual(len(refused), 3, log[-3000:])
        self.assertTrue(all(" E tls.cc:" in line for line in refused), refused)
        self.assertTrue(any("does not match" in line for line in refused), refused)
        self.assertTrue(mismatch_gen)
        time.sleep(2.5)  # two polls and a gRPC watcher pass
        self.assertEqual(set(self.presented().values()), {der(p["server2.pem"])})
        self.run_job(client)
        self.assertTrue(c.scheduler.alive(), c.scheduler.tail())
        text = https(c.http_port, "/metrics", context(p["bundle.pem"]))[1].decode()
        reloads = dict(harness.metric_values(text, "turbovid_tls_reloads_total"))
        self.assertEqual(reloads.get('{result="ok"}'), 1.0, reloads)
        self.assertGreaterEqual(reloads.get('{result="refused"}', 0), 3.0, reloads)
        expiry = harness.metric_values(text, "turbovid_tls_certificate_expiry_timestamp_seconds")
        self.assertTrue(time.time() < expiry[0][1] < time.time() + 3 * 86400, expiry)


if __name__ == "__main__":
    unittest.main(argv=[__file__], verbosity=2)
