"""TLS of the scheduler's gRPC listener, with certificates this test makes with the `openssl`
command: a CA, a server certificate for 127.0.0.1, and client certificates.

- TLS: the Python client and the CLI (--ca-cert) reach gRPC, a plaintext client does not; a
  worker dials with --scheduler-ca and runs a job.
- Mutual TLS (tls.client_ca_file): a client without a certificate signed by the CA is refused at
  the handshake; with one (and the worker with its own), jobs run.
- HTTP stays plaintext (Debian 12's civetweb crashes on TLS with OpenSSL 3): with TLS on, a
  scheduler whose job gateway would listen beyond loopback refuses to start, saying why.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

import grpc

import e2e_case
import harness
from e2e_case import SHORT


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder):
    """ca.pem, server.pem/.key (SAN 127.0.0.1, localhost), client.pem/.key, and a stray CA's
    client certificate (other.pem/.key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=turbovid test {ca}", cwd=folder)
    with open(os.path.join(folder, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ca, ext in (("server", "ca", ["-extfile", "san.ext"]), ("client", "ca", []),
                          ("other", "otherca", [])):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *ext, cwd=folder)
    return {n: os.path.join(folder, n) for n in os.listdir(folder)}


class TlsCase(e2e_case.ClusterCase):
    WORKERS = 1
    MUTUAL = False

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        cls.pki_dir = tempfile.mkdtemp(prefix="tv-e2e-pki-")
        cls.pki = make_pki(cls.pki_dir)
        p = cls.pki
        tls = ["--tls-cert", p["server.pem"], "--tls-key", p["server.key"]]
        worker = ["--scheduler-ca", p["ca.pem"]]
        if cls.MUTUAL:
            tls += ["--tls-client-ca", p["ca.pem"]]
            worker += ["--client-cert", p["client.pem"], "--client-key", p["client.key"]]
        cls.tls_args = tls
        cls.cluster = harness.Cluster(cls.NAME, workers=0, scheduler_args=tls,
                                      worker_args=worker, tenants=["alice"])
        cls.cluster.start_worker("w0", wait=True)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.pki_dir, ignore_errors=True)

    def client(self, **kw):
        c = harness.tv_client.VideoClient(self.cluster.address, api_key=self.cluster.keys["alice"],
                                          ca_cert=self.pki["ca.pem"], **kw)
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

    def test_clients_and_workers_over_tls(self):
        c = self.cluster
        self.run_job(self.client())
        r = c.cli("list", "--api-key", c.keys["alice"], "--ca-cert", self.pki["ca.pem"])
        self.assertEqual(r.returncode, 0, r.stderr)
        plain = c.client(c.keys["alice"])
        with self.assertRaises(grpc.RpcError) as ctx:
            plain.stub.ListJobs(plain.pb.ListJobsRequest(), timeout=5)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_plaintext_job_gateway_only_on_loopback(self):
        c = self.cluster
        argv = [harness.binary("turbovid-scheduler"), "--listen", "127.0.0.1:0",
                "--http-address", "127.0.0.1", "--http-port", "0",
                "--api-http-address", "0.0.0.0", "--api-http-port", "0",
                "--db", os.path.join(c.dir, "other", "jobs.db"),
                "--artifacts", os.path.join(c.dir, "other", "artifacts"),
                "--models", harness.CATALOG, "--auth-mode", "off"] + self.tls_args
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("api_http_address: '0.0.0.0' is not loopback while tls is configured",
                      r.stdout + r.stderr)


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
        self.assertEqual(harness.http_get(c.http_port, "/readyz")[0], 200)


if __name__ == "__main__":
    unittest.main(argv=[__file__], verbosity=2)
