"""The Grafana dashboard and the alert rules against a real Prometheus that scrapes a running
scheduler and CPU worker (jobs named as in deploy/prometheus/prometheus.yml): every panel query
is valid PromQL and returns series, save the few listed in MAY_BE_EMPTY with the reason; every
metric name a query uses is one the processes export (or a listed optional one); the alert rules
load into Prometheus and evaluate; no metric name is exported by both processes (process_* and
turbovid_build_info aside: the job label tells them apart).

Jobs run first: three T2V jobs succeed, and an I2V job fails because the worker's lazy model
points at a missing folder (a failure with reason not_found); a job for a catalog model no worker
lists stays queued (unservable); the worker has a price per hour so the cost panels have data.
"""
import json
import os
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../e2e"))
import e2e_case  # noqa: E402
import harness  # noqa: E402
from e2e_case import SHORT  # noqa: E402

DASHBOARD = os.path.join(harness.SOURCE_DIR, "deploy/grafana/turbovid-fleet.json")
ALERTS = os.path.join(harness.SOURCE_DIR, "deploy/prometheus/turbovid-alerts.yaml")
# Queries that may return nothing here, and why.
MAY_BE_EMPTY = {
    "turbovid_gpu_utilization_ratio": "NVML only: a CPU worker exports no NVML family",
    "turbovid_gpu_power_watts": "NVML only",
    "turbovid_job_requeues_total": "no job is requeued in this run",
    "turbovid_workers_lost_total": "no worker is lost in this run",
    "turbovid_submit_rejected_total": "no submit is rejected in this run",
}
# Names a query may use although this build's processes do not export them (see MAY_BE_EMPTY).
OPTIONAL_NAMES = {"turbovid_gpu_utilization_ratio", "turbovid_gpu_power_watts"}
# Grafana's variables, as the dashboard's "All" selection and a short range substitute them.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m",
             '"$model"': '".*"', '"$node_class"': '".*"'}
PRICE_PER_HOUR = 3.6
UNSERVED_MODEL = "wan2.1-t2v-1.3b"  # in configs/models.yaml, listed by no worker here


def substitute(expr):
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    assert "$" not in expr, expr
    return expr


def names_in(expr):
    """The metric names a PromQL expression reads (histogram suffixes dropped)."""
    names = set(re.findall(r"\b((?:turbovid|process)_[a-z0-9_]+|up)\b", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count"))
            and not n.endswith("_total") else n for n in names}


def exported(text):
    """Family names in an exposition (from its TYPE lines)."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


class DashboardTest(e2e_case.ClusterCase):
    WORKERS = 1
    NAME = "dashboard"
    WORKER_MODELS = {"w0": harness.model_flags(harness.T2V_MODEL,
                                               os.path.join(harness.MODELS_DIR, "tiny-t2v"))
                     + ["--model-lazy", f"{harness.I2V_MODEL}:turbo=/nonexistent/tiny-i2v"]}

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        cls.cluster = harness.Cluster(cls.NAME, workers=cls.WORKERS,
                                      worker_models=cls.WORKER_MODELS,
                                      worker_args=["--price-per-hour", str(PRICE_PER_HOUR)])
        c = cls.cluster
        client = c.client()
        ids = [client.submit(client.request(harness.T2V_MODEL, f"dashboard {i}", seed=i,
                                            **SHORT)).job_id for i in range(3)]
        bad = client.submit(client.request(harness.I2V_MODEL, "no weights", image=harness.make_png(),
                                           **SHORT)).job_id
        cls.unservable = client.submit(client.request(UNSERVED_MODEL, "nobody serves this",
                                                      **SHORT)).job_id
        for i in ids:
            assert client.state_name(client.wait(i, 240)) == "JOB_STATE_SUCCEEDED"
        assert client.state_name(client.wait(bad, 240)) == "JOB_STATE_FAILED"
        cls.prom_port = harness.free_port()
        data = os.path.join(c.dir, "prometheus")
        os.makedirs(data, exist_ok=True)
        config = os.path.join(data, "prometheus.yml")
        worker_targets = [f"127.0.0.1:{p}" for p in c.worker_ports.values()]
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files: [{json.dumps(ALERTS)}]\n"
                    "scrape_configs:\n"
                    "  - job_name: turbovid-scheduler\n    static_configs:\n"
                    f"      - targets: [\"127.0.0.1:{c.http_port}\"]\n"
                    "  - job_name: turbovid-worker\n    static_configs:\n"
                    f"      - targets: {json.dumps(worker_targets)}\n")
        cls.prom = harness.Proc("prometheus", [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}/tsdb",
            f"--web.listen-address=127.0.0.1:{cls.prom_port}", "--log.level=warn"],
            os.path.join(data, "prometheus.log"))
        # Ready when a minute's rate window holds samples of every finished job.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = cls.query_value('sum(turbovid_jobs_total)')
            up = cls.query_value('count(up == 1)')
            waiting = cls.query_value('max(turbovid_queue_unservable_oldest_age_seconds)')
            if done == 4 and up == 2 and waiting:
                break
            time.sleep(1)
        time.sleep(3)  # a few more scrapes, so rate() has two samples after the last change

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "prom"):
            cls.prom.stop()
        super().tearDownClass()

    @classmethod
    def query(cls, promql):
        url = f"/api/v1/query?query={urllib.parse.quote(promql)}"
        status, body = harness.http_get(cls.prom_port, url, timeout=10)
        return status, (json.loads(body) if body else {})

    @classmethod
    def query_value(cls, promql):
        status, body = cls.query(promql)
        if status != 200 or not body["data"]["result"]:
            return None
        return float(body["data"]["result"][0]["value"][1])

    def dashboard(self):
        with open(DASHBOARD) as f:
            return json.load(f)

    def targets(self):
        for panel in self.dashboard()["panels"]:
            for target in panel.get("targets", []):
                yield panel, target

    def test_dashboard_structure(self):
        d = self.dashboard()
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        variables = {v["name"] for v in d["templating"]["list"]}
        self.assertEqual(variables, {"datasource", "model", "node_class"})
        for p in d["panels"]:
            self.assertTrue(p["title"])
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            self.assertTrue(p["targets"], p["title"])
        for v in d["templating"]["list"][1:]:
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", v["definition"]).groups()
            status, body = self.query(f"group by ({label}) ({metric})")
            self.assertEqual(status, 200, v)
            self.assertTrue(body["data"]["result"], v["name"])
        # What the dashboard promises (the list) is there.
        text = json.dumps(d)
        for needle in ("turbovid_queue_depth", "turbovid_queue_oldest_age_seconds",
                       "turbovid_jobs_total", "histogram_quantile(0.99",
                       "turbovid_worker_denoise_step_seconds", "turbovid_worker_stage_duration",
                       "turbovid_gpu_utilization_ratio", "turbovid_gpu_memory_used_bytes",
                       "turbovid_gpu_power_watts", "turbovid_workers{", "turbovid_worker_task_cost",
                       "turbovid_queue_unservable_oldest_age_seconds"):
            self.assertIn(needle, text)

    def test_every_query_evaluates(self):
        c = self.cluster
        available = exported(c.metrics(c.http_port)) | {"up"}
        for port in c.worker_ports.values():
            available |= exported(c.metrics(port))
        for panel, target in self.targets():
            expr = substitute(target["expr"])
            with self.subTest(panel=panel["title"], ref=target["refId"]):
                unknown = names_in(expr) - available - OPTIONAL_NAMES
                self.assertFalse(unknown, f"{expr}: not exported: {unknown}")
                status, body = self.query(expr)
                self.assertEqual(status, 200, f"{expr}: {body}")
                self.assertEqual(body["status"], "success")
                optional = [n for n in MAY_BE_EMPTY if n in expr]
                if not optional:
                    self.assertTrue(body["data"]["result"], f"no series for {expr}")

    def test_values_match_the_run(self):
        v = self.query_value
        self.assertEqual(v('sum(turbovid_jobs_total{state="succeeded"})'), 3)
        self.assertEqual(v('sum(turbovid_jobs_failed_total{reason="not_found"})'), 1)
        self.assertEqual(v('sum(turbovid_worker_tasks_total{result="succeeded",node_class="cpu"})'),
                         3)
        self.assertEqual(v('sum(turbovid_worker_price_per_hour{node_class="cpu"})'),
                         PRICE_PER_HOUR)
        cost = v('sum(turbovid_worker_task_cost_total)')
        self.assertGreater(cost, 0)
        # Cost = task seconds x price / 3600: each task took under a minute here.
        self.assertLess(cost, 4 * PRICE_PER_HOUR / 60)
        self.assertEqual(v('count(turbovid_build_info)'), 2)
        self.assertEqual(v('count(process_start_time_seconds)'), 2)
        self.assertGreater(v('min(turbovid_scheduler_data_free_bytes)'), 0)
        self.assertEqual(v('count(turbovid_job_duration_seconds_count{resolution="480p"})'), 2)
        self.assertGreater(v(f'max(turbovid_queue_unservable_oldest_age_seconds'
                             f'{{model="{UNSERVED_MODEL}"}})'), 0)
        self.assertEqual(v(f'sum(turbovid_queue_depth{{model="{UNSERVED_MODEL}"}})'), 1)
        self.assertGreater(v(f'max(turbovid_queue_oldest_age_seconds{{model="{UNSERVED_MODEL}"}})'),
                           0)

    def test_alert_rules_load_and_evaluate(self):
        status, body = harness.http_get(self.prom_port, "/api/v1/rules", timeout=10)
        self.assertEqual(status, 200)
        rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        self.assertEqual(len(rules), 9)
        deadline = time.monotonic() + 20
        while any(r.get("health") != "ok" for r in rules) and time.monotonic() < deadline:
            time.sleep(1)
            rules = [r for g in json.loads(harness.http_get(self.prom_port, "/api/v1/rules")[1])
                     ["data"]["groups"] for r in g["rules"]]
        for r in rules:
            self.assertEqual(r.get("health"), "ok", r)
        # A healthy run fires nothing (the failure ratio needs 5 jobs, the scheduler is up).
        firing = [r["name"] for r in rules if r.get("state") == "firing"]
        self.assertEqual(firing, [])

    def test_chart_autoscaling_query_evaluates(self):
        """The KEDA trigger the chart renders for a pool of this run's model and node class is
        valid PromQL here and counts what waits and runs (nothing, once the jobs are done)."""
        import subprocess
        import yaml
        tools = os.environ.get("TV_DEPLOY_TOOLS", os.path.join(harness.BUILD_DIR, "deploy-tools"))
        pool = {"name": "cpu", "nodeClass": "cpu", "autoscaling": {"enabled": True, "mode": "keda"},
                "models": [{"model": harness.T2V_MODEL, "variant": "turbo", "path": "tiny-t2v"}]}
        out = subprocess.run([os.path.join(tools, "bin/helm"), "template", "tv",
                              os.path.join(harness.SOURCE_DIR, "helm/turbovid"), "--set-json",
                              f"pools={json.dumps([pool])}"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        scaled = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "ScaledObject"]
        self.assertEqual(len(scaled), 1)
        query = scaled[0]["spec"]["triggers"][0]["metadata"]["query"]
        self.assertEqual(self.query_value(query), 0.0, query)
        self.assertEqual(self.query_value(query.replace('state="busy"', 'state="idle"')), 1.0)

    def test_no_name_in_both_processes(self):
        c = self.cluster
        scheduler = exported(c.metrics(c.http_port))
        for port in c.worker_ports.values():
            shared = scheduler & exported(c.metrics(port))
            allowed = {n for n in shared if n.startswith("process_") or n == "turbovid_build_info"}
            self.assertEqual(shared - allowed, set())
            self.assertIn("process_cpu_seconds_total", allowed)


if __name__ == "__main__":
    e2e_case.main()
