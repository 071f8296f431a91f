"""`promtool check metrics` accepts both processes' /metrics; a real Prometheus server scrapes both
and a PromQL query over its HTTP API returns the completed-job count."""
import json
import os
import subprocess
import time
import urllib.parse

import e2e_case
import harness
from e2e_case import SHORT

SCHEDULER_SUCCEEDED = os.environ.get(
    "TV_E2E_SCHEDULER_SUCCEEDED_QUERY", 'sum(turbovid_jobs_total{state="succeeded"})')
WORKER_SUCCEEDED = 'sum(turbovid_worker_tasks_total{result="succeeded"})'


class MetricsTest(e2e_case.ClusterCase):
    WORKERS = 2
    NAME = "metrics"
    JOBS = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        client = cls.cluster.client()
        ids = [client.submit(client.request(harness.T2V_MODEL, f"metrics {i}", seed=i, **SHORT)
                             ).job_id for i in range(cls.JOBS)]
        for i in ids:
            assert client.state_name(client.wait(i, 240)) == "JOB_STATE_SUCCEEDED"

    def test_grpc_health_and_reflection(self):
        """Both processes run the standard grpc.health.v1 service and server reflection."""
        import grpc
        c = self.cluster
        targets = {"scheduler": c.address,
                   **{w: f"127.0.0.1:{p}" for w, p in c.worker_grpc_ports.items()}}
        for name, target in targets.items():
            with self.subTest(process=name), grpc.insecure_channel(target) as channel:
                # HealthCheckRequest{service=""} is empty; HealthCheckResponse{status=SERVING(1)}
                # is the two bytes 08 01 on the wire.
                check = channel.unary_unary("/grpc.health.v1.Health/Check")
                self.assertEqual(check(b"", timeout=10), b"\x08\x01")
                # ServerReflectionRequest{list_services=""} (field 7): one stream message.
                reflect = channel.stream_stream(
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
                reply = next(iter(reflect(iter([b"\x3a\x00"]), timeout=10)))
                self.assertIn(b"grpc.health.v1.Health", reply)

    def promtool(self, text):
        return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=30)

    def test_promtool_accepts_metrics(self):
        c = self.cluster
        ports = {"scheduler": c.http_port, **{w: p for w, p in c.worker_ports.items()}}
        for name, port in ports.items():
            with self.subTest(process=name):
                text = c.metrics(port)
                r = self.promtool(text)
                self.assertEqual(r.returncode, 0, f"{name}: {r.stdout}{r.stderr}")
                self.assertIn("turbovid_", text)
        worker_text = c.metrics(c.worker_ports["w0"]) + c.metrics(c.worker_ports["w1"])
        for family in ("turbovid_worker_tasks_total", "turbovid_stage_duration_seconds",
                       "turbovid_denoise_step_seconds", "turbovid_gpu_memory_bytes",
                       "turbovid_model_load_seconds"):
            self.assertIn(f"# TYPE {family}", worker_text)
        done = harness.metric_values(worker_text, "turbovid_worker_tasks_total")
        self.assertEqual(sum(v for k, v in done if 'result="succeeded"' in k), self.JOBS)

    def query(self, port, promql):
        url = f"/api/v1/query?query={urllib.parse.quote(promql)}"
        status, body = harness.http_get(port, url)
        if status != 200:
            return None
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def test_prometheus_scrapes_both(self):
        c = self.cluster
        port = harness.free_port()
        data = os.path.join(c.dir, "prometheus")
        os.makedirs(data, exist_ok=True)
        targets = [f"127.0.0.1:{c.http_port}"] + [f"127.0.0.1:{p}" for p in c.worker_ports.values()]
        config = os.path.join(data, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: turbovid\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        prom = harness.Proc("prometheus", [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}/tsdb",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            os.path.join(data, "prometheus.log"))
        try:
            deadline = time.monotonic() + 90
            got = {}
            while time.monotonic() < deadline:
                self.assertTrue(prom.alive(), prom.tail())
                got = {q: self.query(port, q) for q in (
                    SCHEDULER_SUCCEEDED, WORKER_SUCCEEDED, 'count(up{job="turbovid"} == 1)')}
                if all(v is not None for v in got.values()) and \
                        got['count(up{job="turbovid"} == 1)'] == len(targets) and \
                        got[SCHEDULER_SUCCEEDED] == self.JOBS and got[WORKER_SUCCEEDED] == self.JOBS:
                    break
                time.sleep(1)
            self.assertEqual(got[SCHEDULER_SUCCEEDED], self.JOBS, got)
            self.assertEqual(got[WORKER_SUCCEEDED], self.JOBS, got)
            self.assertEqual(got['count(up{job="turbovid"} == 1)'], len(targets), got)
        finally:
            prom.stop()


if __name__ == "__main__":
    e2e_case.main()
