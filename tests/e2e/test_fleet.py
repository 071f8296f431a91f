"""Fleet economics end to end: a scheduler started with a service-times table (a price for the cpu
class, a prior for the tiny model) and its own priority classes, API keys on, two CPU workers. Jobs with
deadlines and priority classes (Python client and `turbovid generate --deadline
--priority-class`) run; `turbovid fleet` (FleetService.GetFleet) shows the cpu class with its
price and workers and a measured service time for the jobs' shape; bad deadlines and classes are
refused naming the field; GetFleet needs a key, over gRPC and over HTTP (GET /turbovid/v1/fleet); /metrics carries the fleet families and passes
promtool."""
import json
import os
import shutil
import subprocess
import tempfile

import grpc

import e2e_case
import harness
from e2e_case import SHORT

SERVICE_TIMES = """
node_classes:
  cpu: {price_per_hour: 0.05, basis: e2e}
priors:
  - {node_class: cpu, model: tiny-t2v, variant: turbo, width_pixels: 64, height_pixels: 64,
     frames: 5, step_seconds: 0.5, fixed_seconds: 1.0, basis: estimate}
"""

SCHEDULER_YAML = """
placement:
  service_times_file: "{service_times}"
  default_slo_seconds: 120
  priority_classes:
    interactive: {{priority: 50, deadline_seconds: 300}}
    overnight: {{priority: -10, deadline_seconds: 0}}
"""


class FleetTest(e2e_case.ClusterCase):
    NAME = "fleet"
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        cls.failed = False
        cls.config_dir = tempfile.mkdtemp(prefix="tv-e2e-fleet-config-")
        service_times = os.path.join(cls.config_dir, "service-times.yaml")
        with open(service_times, "w") as f:
            f.write(SERVICE_TIMES)
        config = os.path.join(cls.config_dir, "scheduler.yaml")
        with open(config, "w") as f:
            f.write(SCHEDULER_YAML.format(service_times=service_times))
        cls.cluster = harness.Cluster(cls.NAME, workers=cls.WORKERS, tenants=["alice"],
                                      scheduler_args=["--config", config])
        cls.key = cls.cluster.keys["alice"]
        client = cls.cluster.client(api_key=cls.key)
        cls.jobs = []
        for i, extra in enumerate([dict(priority_class="interactive"),
                                   dict(deadline_seconds=600.0),
                                   dict(priority_class="overnight")]):
            job = client.submit(client.request(harness.T2V_MODEL, f"fleet {i}", seed=i, **SHORT,
                                               **extra))
            cls.jobs.append(client.wait(job.job_id, 240))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.config_dir, ignore_errors=True)

    def cli(self, *args, check=False):
        return self.cluster.cli(*args, "--api-key", self.key, check=check)

    def test_jobs_carry_their_resolved_urgency(self):
        client = self.cluster.client(api_key=self.key)
        for job in self.jobs:
            self.assertEqual(client.state_name(job), "JOB_STATE_SUCCEEDED", job.error)
        interactive, absolute, overnight = (j.request for j in self.jobs)
        self.assertEqual(interactive.priority, 50)
        self.assertAlmostEqual(interactive.deadline_unix_seconds - self.jobs[0].created_unix_seconds,
                               300, places=3)
        self.assertEqual(absolute.deadline_seconds, 0)  # stored as the absolute deadline
        self.assertAlmostEqual(absolute.deadline_unix_seconds - self.jobs[1].created_unix_seconds,
                               600, places=3)
        self.assertEqual(overnight.priority, -10)
        self.assertEqual(overnight.deadline_unix_seconds, 0)

    def test_bad_deadlines_and_classes_name_the_field(self):
        client = self.cluster.client(api_key=self.key)
        for extra, field in [(dict(deadline_seconds=-1.0), "deadline_seconds"),
                             (dict(deadline_unix_seconds=1000.0), "deadline_unix_seconds"),
                             (dict(priority_class="standard"), "priority_class")]:
            with self.subTest(field=field), self.assertRaises(grpc.RpcError) as raised:
                client.submit(client.request(harness.T2V_MODEL, "bad", **SHORT, **extra))
            self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(field, raised.exception.details())

    def test_cli_generate_with_deadline_and_class(self):
        out = os.path.join(self.cluster.dir, "cli.mp4")
        r = self.cli("generate", "--model", harness.T2V_MODEL, "--prompt", "cli fleet",
                     "--frames", "5", "--width", "64", "--height", "64", "--steps", "2",
                     "--seed", "3", "--deadline", "900", "--priority-class", "interactive",
                     "--quiet", "--json", "--out", out, check=True)
        job = json.loads(r.stdout)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(job["request"]["priority"], 50)  # from the class
        self.assertGreater(job["request"]["deadline_unix_seconds"], job["created_unix_seconds"])
        r = self.cli("generate", "--model", harness.T2V_MODEL, "--prompt", "x",
                     "--deadline", "-3", "--no-wait")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("deadline_seconds", r.stderr)

    def test_fleet_command_shows_prices_workers_and_measured_times(self):
        fleet = json.loads(self.cli("fleet", "--json", check=True).stdout)
        classes = {c["node_class"]: c for c in fleet["node_classes"]}
        self.assertAlmostEqual(classes["cpu"]["price_per_hour"], 0.05)
        self.assertEqual(classes["cpu"]["workers"], 2)
        measured = [e for e in fleet["service_times"]
                    if e["node_class"] == "cpu" and e["model_id"] == harness.T2V_MODEL
                    and e["width_pixels"] == 64 and e["num_frames"] == 5
                    and e["num_steps"] == 2]
        self.assertEqual(len(measured), 1, fleet["service_times"])
        self.assertEqual(measured[0]["source"], "measured")
        self.assertGreaterEqual(int(measured[0]["samples"]), 3)
        self.assertAlmostEqual(measured[0]["prior_seconds"], 2.0)  # 1.0 + 2 x 0.5
        self.assertGreater(measured[0]["seconds"], 0)
        text = self.cli("fleet", check=True).stdout
        self.assertIn("cpu", text)
        self.assertIn("measured", text)
        # Without a key (or with a wrong one) the fleet view is refused, as ListWorkers is.
        env = {k: v for k, v in os.environ.items() if k != "TURBOVID_API_KEY"}
        r = self.cluster.cli("fleet", env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = self.cluster.cli("fleet", "--api-key", "tv_wrong", env=env)
        self.assertIn("UNAUTHENTICATED", r.stderr)

    def test_fleet_over_http(self):
        """GET /turbovid/v1/fleet on the job HTTP API: the same view as `turbovid fleet`, with the
        same key rule as /turbovid/v1/workers."""
        import urllib.error
        import urllib.request

        def get(key, method="GET"):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.cluster.api_port}/turbovid/v1/fleet", headers=headers,
                method=method)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.load(r)
            except urllib.error.HTTPError as e:
                return e.code, json.load(e)

        status, fleet = get(self.key)
        self.assertEqual(status, 200, fleet)
        classes = {c["node_class"]: c for c in fleet["node_classes"]}
        self.assertAlmostEqual(classes["cpu"]["price_per_hour"], 0.05)
        self.assertEqual(classes["cpu"]["workers"], 2)
        cli = json.loads(self.cli("fleet", "--json", check=True).stdout)
        self.assertEqual(sorted(c["node_class"] for c in fleet["node_classes"]),
                         sorted(c["node_class"] for c in cli["node_classes"]))
        self.assertTrue([e for e in fleet["service_times"] if e["source"] == "measured"
                         and e["model_id"] == harness.T2V_MODEL], fleet["service_times"])
        for key in ("", "tv_wrong"):
            status, body = get(key)
            self.assertEqual(status, 401, body)
            self.assertEqual(body["code"], "UNAUTHENTICATED")
        status, body = get(self.key, method="POST")
        self.assertGreaterEqual(status, 400)
        self.assertIn("takes GET", body["message"])

    def test_fleet_metrics(self):
        text = self.cluster.metrics(self.cluster.http_port)

        def total(name, **labels):
            return sum(v for k, v in harness.metric_values(text, name)
                       if all(f'{l}="{want}"' in k for l, want in labels.items()))

        self.assertEqual(total("turbovid_node_class_price_per_hour", node_class="cpu"), 0.05)
        self.assertGreaterEqual(
            total("turbovid_placement_decisions_total", node_class="cpu",
                  reason="cheapest_meeting_deadline"), 2)
        self.assertGreaterEqual(total("turbovid_placement_decisions_total", node_class="cpu",
                                      reason="cheapest_idle"), 1)
        self.assertGreaterEqual(total("turbovid_deadline_jobs_total", result="met"), 2)
        self.assertGreater(total("turbovid_job_cost_total", node_class="cpu"), 0)
        self.assertGreaterEqual(total("turbovid_job_service_seconds_count", node_class="cpu"), 3)
        self.assertEqual(len(harness.metric_values(text, "turbovid_pool_desired_workers")), 4)
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    e2e_case.main()
