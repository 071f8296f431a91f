"""`promtool check metrics` accepts both processes' /metrics; the CPU worker exports every family
with its labels (and no NVML series) and its counts move by the jobs run; a real Prometheus server
scrapes both and a PromQL query over its HTTP API returns the completed-job count."""
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

# The worker's families and the label names of their samples (histograms: of _count).
WORKER_FAMILIES = {
    "turbovid_worker_tasks_total": {"model", "variant", "node_class", "result"},
    "turbovid_worker_stage_duration_seconds": {"model", "variant", "node_class", "resolution",
                                               "stage"},
    "turbovid_worker_denoise_step_seconds": {"model", "variant", "node_class", "resolution"},
    "turbovid_model_load_seconds": {"model", "variant"},
    "turbovid_worker_video_bytes": {"model", "variant"},
    "turbovid_worker_task_peak_memory_bytes": {"model", "variant"},
    "turbovid_gpu_memory_used_bytes": set(),
    "turbovid_gpu_memory_total_bytes": set(),
    "turbovid_gpu_memory_peak_bytes": set(),
    "turbovid_worker_price_per_hour": {"node_class"},
    "turbovid_worker_task_cost_total": {"model", "variant", "node_class"},
}
# Read from NVML: a CPU worker exports none of them.
NVML_FAMILIES = ("turbovid_gpu_utilization_ratio", "turbovid_gpu_power_watts",
                 "turbovid_gpu_temperature_celsius", "turbovid_gpu_device_memory_used_bytes")


def labels(key):
    """{'model': 'tiny-t2v', ...} from a sample's label text (our label values hold no quotes)."""
    inner = key.strip("{}")
    return dict(pair.split("=", 1) for pair in inner.split(",")) if inner else {}


def total(text, name, **match):
    """Sum of the samples of `name` whose labels include `match`."""
    return sum(v for k, v in harness.metric_values(text, name)
               if all(labels(k).get(l) == f'"{want}"' for l, want in match.items()))


class MetricsTest(e2e_case.ClusterCase):
    WORKERS = 2
    NAME = "metrics"
    JOBS = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Before any job: the counts the jobs below must move.
        cls.before = "".join(cls.cluster.metrics(p) for p in cls.cluster.worker_ports.values())
        client = cls.cluster.client()
        ids = [client.submit(client.request(harness.T2V_MODEL, f"metrics {i}", seed=i, **SHORT)
                             ).job_id for i in range(cls.JOBS)]
        for i in ids:
            assert client.state_name(client.wait(i, 240)) == "JOB_STATE_SUCCEEDED"

    def test_grpc_health_and_reflection(self):
        """Both processes run the standard grpc.health.v1 service; workers serve reflection, the
        scheduler only when configured (grpc_reflection: it lists every service to anyone)."""
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
                if name == "scheduler":
                    with self.assertRaises(grpc.RpcError) as ctx:
                        next(iter(reflect(iter([b"\x3a\x00"]), timeout=10)))
                    self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
                    continue
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
        done = harness.metric_values(worker_text, "turbovid_worker_tasks_total")
        self.assertEqual(sum(v for k, v in done if 'result="succeeded"' in k), self.JOBS)

    def test_worker_families_and_labels(self):
        """Every worker family is there with its label names; the NVML ones are absent."""
        c = self.cluster
        for worker, port in c.worker_ports.items():
            text = c.metrics(port)
            for family, names in WORKER_FAMILIES.items():
                with self.subTest(worker=worker, family=family):
                    self.assertIn(f"# TYPE {family} ", text)
                    sample = family + "_count" if f"# TYPE {family} histogram" in text else family
                    for key, _ in harness.metric_values(text, sample):
                        self.assertEqual(set(labels(key)), names, key)
                        if "node_class" in names:
                            self.assertEqual(labels(key)["node_class"], '"cpu"', key)
            for family in NVML_FAMILIES:
                self.assertNotIn(family, text, worker)
            self.assertGreater(total(text, "turbovid_gpu_memory_used_bytes"), 0, worker)
            self.assertGreater(total(text, "turbovid_gpu_memory_total_bytes"), 0, worker)
            # Both models were loaded before the jobs, once each.
            for model in (harness.T2V_MODEL, harness.I2V_MODEL):
                self.assertEqual(total(text, "turbovid_model_load_seconds_count", model=model,
                                       variant=harness.VARIANT), 1, (worker, model))

    def test_counts_moved_by_the_jobs(self):
        """The histogram counts and sums of the worker moved by exactly the jobs run."""
        c = self.cluster
        after = "".join(c.metrics(p) for p in c.worker_ports.values())
        t2v = dict(model=harness.T2V_MODEL, variant=harness.VARIANT)

        def moved(name, **match):
            return total(after, name, **match) - total(self.before, name, **match)

        self.assertEqual(moved("turbovid_worker_tasks_total", result="succeeded", **t2v),
                         self.JOBS)
        for stage in ("encoding_text", "denoising", "decoding_video", "encoding_mp4",
                      "uploading"):
            self.assertEqual(moved("turbovid_worker_stage_duration_seconds_count", stage=stage,
                                   node_class="cpu", **t2v), self.JOBS, stage)
        self.assertGreater(moved("turbovid_worker_stage_duration_seconds_sum", **t2v), 0)
        self.assertEqual(moved("turbovid_worker_denoise_step_seconds_count", **t2v),
                         self.JOBS * SHORT["steps"])
        self.assertGreater(moved("turbovid_worker_denoise_step_seconds_sum", **t2v), 0)
        self.assertEqual(moved("turbovid_worker_video_bytes_count", **t2v), self.JOBS)
        self.assertGreater(moved("turbovid_worker_video_bytes_sum", **t2v), 0)
        self.assertEqual(moved("turbovid_worker_task_peak_memory_bytes_count", **t2v), self.JOBS)
        self.assertGreater(total(after, "turbovid_gpu_memory_peak_bytes"), 0)
        self.assertEqual(moved("turbovid_model_load_seconds_count"), 0)

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
