"""The Helm chart (helm/turbovid): `helm lint` and `helm template` of every values file, every
rendered object validated offline against the Kubernetes OpenAPI schemas (kubernetes-models and
its Prometheus Operator and KEDA packages, validate_k8s.mjs), assertions on what was rendered
(GPU pools, probes, drain, budgets, policies, autoscaling, monitoring), bad values refused with an
error naming the key, and the rendered scheduler and worker configs loaded by the real binaries.

helm and the validators come from scripts/install-deploy-tools.sh (ctest fixture deploy_tools).
Environment: TV_DEPLOY_TOOLS (their folder), TV_BUILD_DIR, TV_E2E_MODELS.
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../e2e"))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(harness.SOURCE_DIR, "helm/turbovid")
TOOLS = os.environ.get("TV_DEPLOY_TOOLS", os.path.join(harness.BUILD_DIR, "deploy-tools"))
HELM = os.path.join(TOOLS, "bin/helm")
VALUES = {
    "default": None,
    "mixed-fleet": os.path.join(CHART, "values-mixed-fleet.yaml"),
    "hpa-and-options": os.path.join(HERE, "helm-values/hpa-and-options.yaml"),
    "auth-off": os.path.join(HERE, "helm-values/auth-off.yaml"),
}
SECRET_DIR = "/var/run/turbovid"


def merged_values(path):
    """The chart's values with a values file over them (maps merge, the rest is replaced)."""
    def merge(base, over):
        for k, v in over.items():
            base[k] = merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(
                base.get(k), dict) else v
        return base
    with open(os.path.join(CHART, "values.yaml")) as f:
        values = yaml.safe_load(f)
    if path:
        with open(path) as f:
            merge(values, yaml.safe_load(f))
    return values


def secret_data(obj):
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def volume(pod_spec, name):
    vols = [v for v in pod_spec["volumes"] if v["name"] == name]
    return vols[0] if vols else None


def mount(c, name):
    mounts = [m["mountPath"] for m in c["volumeMounts"] if m["name"] == name]
    return mounts[0] if mounts else None


def helm(*args, check=True):
    r = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "HELM_CACHE_HOME": os.path.join(TOOLS, "helm-cache"),
                            "HELM_CONFIG_HOME": os.path.join(TOOLS, "helm-config"),
                            "HELM_DATA_HOME": os.path.join(TOOLS, "helm-data")})
    if check and r.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def render(values_file, *sets):
    args = ["template", "tv", CHART, "--namespace", "video"]
    if values_file:
        args += ["-f", values_file]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(*args).stdout) if d]


def validate(objects):
    path = os.path.join(TOOLS, "objects.json")
    with open(path, "w") as f:
        json.dump(objects, f)
    shutil.copy(os.path.join(HERE, "validate_k8s.mjs"), TOOLS)  # resolves TOOLS/node_modules
    return subprocess.run(["node", os.path.join(TOOLS, "validate_k8s.mjs"), path],
                          capture_output=True, text=True, timeout=120)


def find(objects, kind, name):
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(f"no {kind} {name} in {[(o['kind'], o['metadata']['name']) for o in objects]}")


def container(obj):
    return obj["spec"]["template"]["spec"]["containers"][0]


class HelmChartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {name: render(path) for name, path in VALUES.items()}

    def test_lint_every_values_file(self):
        for name, path in VALUES.items():
            with self.subTest(values=name):
                r = helm("lint", "--strict", CHART, *(["-f", path] if path else []))
                self.assertIn("0 chart(s) failed", r.stdout)

    def test_objects_valid_against_the_kubernetes_schemas(self):
        for name, objects in self.rendered.items():
            with self.subTest(values=name):
                r = validate(objects)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn(f"{len(objects)} valid, 0 invalid", r.stdout)
        # The validator is no rubber stamp: a wrong type, a missing required field and a
        # misspelt field deep in a pod template fail.
        broken = json.loads(json.dumps(self.rendered["mixed-fleet"]))
        find(broken, "Deployment", "tv-turbovid-worker-h100")["spec"]["replicas"] = "three"
        del find(broken, "Service", "tv-turbovid-scheduler-api")["spec"]["ports"][0]["port"]
        probe = container(find(broken, "StatefulSet", "tv-turbovid-scheduler"))["readinessProbe"]
        probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
        r = validate(broken)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("INVALID apps/v1 Deployment tv-turbovid-worker-h100", r.stdout)
        self.assertIn("INVALID v1 Service tv-turbovid-scheduler-api", r.stdout)
        self.assertIn("INVALID apps/v1 StatefulSet tv-turbovid-scheduler: StatefulSet.spec.template"
                      ".spec.containers[0].readinessProbe.httpGet.paht: unknown field", r.stdout)

    def test_gpu_pools(self):
        objs = self.rendered["mixed-fleet"]
        h100 = find(objs, "Deployment", "tv-turbovid-worker-h100")
        rtx = find(objs, "Deployment", "tv-turbovid-worker-rtx5090")
        for d, product, gpus in ((h100, "NVIDIA-H100-80GB-HBM3", 4),
                                 (rtx, "NVIDIA-GeForce-RTX-5090", 1)):
            spec = d["spec"]["template"]["spec"]
            self.assertEqual(spec["nodeSelector"], {"nvidia.com/gpu.product": product})
            self.assertIn({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                          spec["tolerations"])
            self.assertEqual(container(d)["resources"]["limits"]["nvidia.com/gpu"], gpus)
            self.assertNotIn("replicas", d["spec"])  # KEDA owns the count
        cfg = {p: yaml.safe_load(find(objs, "ConfigMap", f"tv-turbovid-worker-{p}")["data"]
                                 ["worker.yaml"]) for p in ("h100", "rtx5090")}
        self.assertEqual((cfg["h100"]["gpu_count"], cfg["h100"]["tensor_parallel_size"]), (4, 4))
        self.assertEqual((cfg["rtx5090"]["gpu_count"], cfg["rtx5090"]["tensor_parallel_size"]),
                         (1, 1))
        self.assertEqual(cfg["rtx5090"]["node_class"], "rtx5090")
        self.assertEqual(cfg["rtx5090"]["backend"], "cuda")
        self.assertEqual(cfg["rtx5090"]["memory_budget_bytes"], 24 << 30)
        self.assertEqual(cfg["h100"]["price_per_hour"], 12.0)
        self.assertEqual([(m["model_id"], m["variant"], m["path"], m["preload"])
                          for m in cfg["rtx5090"]["models"]],
                         [("wan2.1-t2v-1.3b", "turbo-int8", "/models/wan2.1-t2v-1.3b/turbo-int8",
                           True),
                          ("wan2.1-t2v-14b", "turbo-int8", "/models/wan2.1-t2v-14b/turbo-int8",
                           False)])
        api = find(objs, "Service", "tv-turbovid-scheduler-api")
        grpc = [p["port"] for p in api["spec"]["ports"] if p["name"] == "grpc"][0]
        self.assertEqual(cfg["h100"]["scheduler"], f"tv-turbovid-scheduler-api.video.svc:{grpc}")
        # Every model a pool serves is in the catalog with a memory entry for its node class.
        catalog = yaml.safe_load(find(objs, "ConfigMap", "tv-turbovid-scheduler")["data"]
                                 ["models.yaml"])
        memory = {(m["id"], v["name"]): v["memory_gib"] for m in catalog["models"]
                  for v in m["variants"]}
        for c in cfg.values():
            for m in c["models"]:
                self.assertIn(c["node_class"], memory[(m["model_id"], m["variant"])], m)
        # The 8-GPU pool of the other values file.
        objs = self.rendered["hpa-and-options"]
        h200 = find(objs, "Deployment", "tv-turbovid-worker-h200x8")
        self.assertEqual(container(h200)["resources"]["limits"]["nvidia.com/gpu"], 8)
        self.assertEqual(h200["spec"]["template"]["spec"]["volumes"][1],
                         {"name": "models", "hostPath": {"path": "/mnt/models", "type": "Directory"}})
        cpu = find(objs, "Deployment", "tv-turbovid-worker-cpu")
        self.assertNotIn("nvidia.com/gpu", json.dumps(container(cpu)["resources"]))
        self.assertEqual(cpu["spec"]["replicas"], 2)

    def test_probes_drain_and_security(self):
        objs = self.rendered["mixed-fleet"]
        maxjob = {"h100": 900, "rtx5090": 1800}
        for pool, seconds in maxjob.items():
            d = find(objs, "Deployment", f"tv-turbovid-worker-{pool}")
            spec = d["spec"]["template"]["spec"]
            self.assertGreater(spec["terminationGracePeriodSeconds"], seconds)
            c = container(d)
            self.assertEqual(c["lifecycle"]["preStop"]["exec"]["command"][:2],
                             ["/usr/local/bin/turbovid-worker", "drain"])
            self.assertEqual(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 0)
        for obj in [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]:
            c = container(obj)
            with self.subTest(obj=obj["metadata"]["name"]):
                self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
                self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
                self.assertEqual(c["startupProbe"]["httpGet"]["path"], "/healthz")
                sc = c["securityContext"]
                self.assertTrue(sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"])
                self.assertEqual(sc["runAsUser"], 10001)
                self.assertFalse(sc["allowPrivilegeEscalation"])
                self.assertFalse(obj["spec"]["template"]["spec"]["automountServiceAccountToken"])
        sts = find(objs, "StatefulSet", "tv-turbovid-scheduler")
        self.assertEqual(sts["spec"]["replicas"], 1)
        self.assertEqual(container(sts)["lifecycle"]["preStop"], {"sleep": {"seconds": 5}})
        claim = sts["spec"]["volumeClaimTemplates"][0]
        self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "500Gi")
        self.assertEqual(claim["spec"]["storageClassName"], "fast-ssd")
        mounts = {m["name"]: m["mountPath"] for m in container(sts)["volumeMounts"]}
        config = yaml.safe_load(find(objs, "ConfigMap", "tv-turbovid-scheduler")["data"]
                                ["scheduler.yaml"])
        for key in ("db_path", "artifact_dir", "db_backup_dir"):
            self.assertTrue(config[key].startswith(mounts[claim["metadata"]["name"]] + "/"), key)
        sts = find(self.rendered["hpa-and-options"], "StatefulSet", "tv-turbovid-scheduler")
        self.assertEqual(mount(container(sts), "secret-extra"), "/etc/turbovid/extra")
        self.assertEqual(volume(sts["spec"]["template"]["spec"], "secret-extra")["secret"]
                         ["secretName"], "turbovid-extra")
        # Secrets of the other values file reach every worker pool too.
        for pool in ("cpu", "h200x8"):
            d = find(self.rendered["hpa-and-options"], "Deployment", f"tv-turbovid-worker-{pool}")
            self.assertIn({"name": "secret-tls", "mountPath": "/etc/turbovid/tls", "readOnly": True},
                          container(d)["volumeMounts"])

    def test_disruption_budgets_select_their_pods(self):
        objs = self.rendered["mixed-fleet"]
        pdbs = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
        self.assertEqual(len(pdbs), 3)
        for pdb in pdbs:
            name = pdb["metadata"]["name"]
            kind = "StatefulSet" if name.endswith("scheduler") else "Deployment"
            pods = find(objs, kind, name)["spec"]["template"]["metadata"]["labels"]
            sel = pdb["spec"]["selector"]["matchLabels"]
            self.assertEqual({k: pods.get(k) for k in sel}, sel, name)
            self.assertEqual(pdb["spec"]["maxUnavailable"], 0 if kind == "StatefulSet" else 1)

    def test_network_policies(self):
        objs = self.rendered["mixed-fleet"]
        sched = find(objs, "NetworkPolicy", "tv-turbovid-scheduler")["spec"]
        worker = find(objs, "NetworkPolicy", "tv-turbovid-worker")["spec"]
        self.assertEqual(sorted(sched["policyTypes"]), ["Egress", "Ingress"])
        self.assertEqual(sorted(worker["policyTypes"]), ["Egress", "Ingress"])
        # Workers reach only the scheduler's gRPC port (and DNS).
        to_scheduler = worker["egress"][0]
        self.assertEqual(to_scheduler["to"][0]["podSelector"]["matchLabels"]
                         ["app.kubernetes.io/component"], "scheduler")
        self.assertEqual(to_scheduler["ports"], [{"protocol": "TCP", "port": 50051}])
        self.assertEqual({p["port"] for p in worker["egress"][1]["ports"]}, {53})
        self.assertEqual(len(worker["egress"]), 2)
        # Clients reach the job API ports only; workers the gRPC port; monitoring the HTTP port.
        clients, workers, monitoring = sched["ingress"]
        self.assertEqual(clients["from"], [{"podSelector": {"matchLabels":
                                                            {"turbovid.io/client": "true"}}}])
        self.assertEqual({p["port"] for p in clients["ports"]}, {50051, 8080})
        self.assertEqual(workers["from"][0]["podSelector"]["matchLabels"]
                         ["app.kubernetes.io/component"], "worker")
        self.assertEqual(workers["ports"], [{"protocol": "TCP", "port": 50051}])
        self.assertEqual(monitoring["ports"], [{"protocol": "TCP", "port": 9090}])
        self.assertFalse([o for o in self.rendered["hpa-and-options"]
                          if o["kind"] == "NetworkPolicy"])

    def test_autoscaling(self):
        objs = self.rendered["mixed-fleet"]
        h100 = find(objs, "ScaledObject", "tv-turbovid-worker-h100")["spec"]
        rtx = find(objs, "ScaledObject", "tv-turbovid-worker-rtx5090")["spec"]
        self.assertEqual((h100["minReplicaCount"], h100["maxReplicaCount"]), (1, 4))
        self.assertEqual((rtx["minReplicaCount"], rtx["maxReplicaCount"]), (0, 16))
        self.assertEqual(rtx["scaleTargetRef"]["name"], "tv-turbovid-worker-rtx5090")
        query = rtx["triggers"][0]["metadata"]["query"]
        self.assertIn('model=~"wan2.1-t2v-1.3b|wan2.1-t2v-14b"', query)
        self.assertIn('node_class="rtx5090"', query)
        self.assertEqual(rtx["triggers"][0]["metadata"]["threshold"], "1")
        self.assertIn('model=~"wan2.1-t2v-14b|wan2.2-i2v-a14b"', h100["triggers"][0]["metadata"]
                      ["query"])
        hpa = find(self.rendered["hpa-and-options"], "HorizontalPodAutoscaler",
                   "tv-turbovid-worker-h200x8")["spec"]
        metric = hpa["metrics"][0]["external"]
        self.assertEqual(metric["metric"]["name"], "turbovid_queue_depth")
        self.assertEqual(metric["metric"]["selector"]["matchExpressions"][0]["values"],
                         ["wan2.2-i2v-a14b"])
        self.assertEqual(metric["target"], {"type": "AverageValue", "averageValue": "4"})
        self.assertFalse([o for o in self.rendered["hpa-and-options"]
                          if o["kind"] == "HorizontalPodAutoscaler"
                          and o["metadata"]["name"].endswith("-cpu")])

    def test_monitoring_objects(self):
        objs = self.rendered["mixed-fleet"]
        rule = find(objs, "PrometheusRule", "tv-turbovid")
        with open(os.path.join(harness.SOURCE_DIR, "deploy/prometheus/turbovid-alerts.yaml")) as f:
            self.assertEqual(rule["spec"]["groups"], yaml.safe_load(f)["groups"])
        for ours, copy in (("deploy/prometheus/turbovid-alerts.yaml", "files/turbovid-alerts.yaml"),
                           ("configs/models.yaml", "files/models.yaml")):
            with open(os.path.join(harness.SOURCE_DIR, ours)) as a, \
                    open(os.path.join(CHART, copy)) as b:
                self.assertEqual(a.read(), b.read(), f"helm/turbovid/{copy} differs from {ours}")
        sm = find(objs, "ServiceMonitor", "tv-turbovid-scheduler")["spec"]
        svc = find(objs, "Service", "tv-turbovid-scheduler-metrics")["metadata"]["labels"]
        self.assertEqual(svc[sm["jobLabel"]], "turbovid-scheduler")
        self.assertTrue(all(svc.get(k) == v for k, v in sm["selector"]["matchLabels"].items()))
        pm = find(objs, "PodMonitor", "tv-turbovid-worker")["spec"]
        self.assertEqual(pm["podMetricsEndpoints"][0]["relabelings"][0]["replacement"],
                         "turbovid-worker")
        self.assertFalse([o for o in self.rendered["default"]
                          if o["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule")])

    def test_auth_secrets_tls_and_the_job_api(self):
        """For every values file: auth mode, the Secrets mounted where the configs read them (the
        chart's own Secret holding a working key and token digest), TLS, and the HTTP job API
        bound, exposed and let through the NetworkPolicy exactly when auth is on (over HTTPS when
        TLS is on), and the probes and the scrape speaking HTTPS with TLS."""
        for name, objects in self.rendered.items():
            with self.subTest(values=name):
                self.check_auth(merged_values(VALUES[name]), objects)
        # The values files cover: generated key and token, an existing keys Secret, keys and
        # token from values with mutual TLS, auth off.
        modes = {n: (v["auth"]["mode"], v["tls"]["enabled"]) for n, v in
                 ((n, merged_values(p)) for n, p in VALUES.items())}
        self.assertEqual(modes, {"default": ("required", False), "mixed-fleet": ("required", False),
                                 "hpa-and-options": ("required", True), "auth-off": ("off", False)})
        # Bad auth and TLS values name the key.
        for sets, needle in ((["auth.mode=maybe"], "mode"),
                             (["tls.enabled=true"], "tls.cert, tls.key, tls.ca"),
                             (["tls.enabled=true", "tls.existingSecret=s", "tls.mutual=true"],
                              "tls.workerClientSecret"),
                             (["scheduler.config.auth.mode=off"], "scheduler.config.auth: set the "
                              "top-level auth values")):
            r = helm("template", "tv", CHART, *sum((["--set", x] for x in sets), []), check=False)
            self.assertNotEqual(r.returncode, 0, sets)
            self.assertIn(needle, r.stderr)

    def check_auth(self, values, objs):
        required = values["auth"]["mode"] == "required"
        tls = values["tls"]["enabled"]
        exposed = required
        grpc, ops, api = (values["scheduler"][k] for k in ("grpcPort", "httpPort", "apiHttpPort"))
        sts = find(objs, "StatefulSet", "tv-turbovid-scheduler")
        pod, c = sts["spec"]["template"]["spec"], container(sts)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            self.assertEqual(c[probe]["httpGet"]["scheme"], "HTTPS" if tls else "HTTP", probe)
        for sm in (o for o in objs if o["kind"] == "ServiceMonitor"):
            endpoint = sm["spec"]["endpoints"][0]
            self.assertEqual(endpoint.get("scheme", "http"), "https" if tls else "http")
            if tls:
                self.assertEqual(endpoint["tlsConfig"]["ca"]["secret"]["key"], "ca.crt")
        config = yaml.safe_load(find(objs, "ConfigMap", "tv-turbovid-scheduler")["data"]
                                ["scheduler.yaml"])
        self.assertEqual(config["auth"]["mode"], values["auth"]["mode"])
        self.assertEqual(config["api_http_address"], "0.0.0.0" if exposed else "127.0.0.1")
        self.assertEqual(config["api_http_port"], api)
        self.assertEqual(config["http_address"], "0.0.0.0")
        # The job-API Service: gRPC always, the HTTP job API only when exposed; the ops port
        # (/metrics) only on the metrics Service.
        svc = {p["name"]: p for p in find(objs, "Service", "tv-turbovid-scheduler-api")["spec"]
               ["ports"]}
        self.assertEqual(set(svc), {"grpc", "http-api"} if exposed else {"grpc"})
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        if exposed:
            self.assertEqual((svc["http-api"]["port"], ports[svc["http-api"]["targetPort"]]),
                             (api, api))
        self.assertNotIn(ops, [p["port"] for p in svc.values()])
        self.assertEqual([p["port"] for p in find(objs, "Service", "tv-turbovid-scheduler-metrics")
                          ["spec"]["ports"]], [ops])
        if values["networkPolicy"]["enabled"]:
            clients, workers, monitoring = find(objs, "NetworkPolicy", "tv-turbovid-scheduler")[
                "spec"]["ingress"]
            self.assertEqual([p["port"] for p in clients["ports"]],
                             [grpc, api] if exposed else [grpc])
            self.assertEqual([p["port"] for p in workers["ports"]], [grpc])
            self.assertEqual([p["port"] for p in monitoring["ports"]], [ops])
            wpol = find(objs, "NetworkPolicy", "tv-turbovid-worker")["spec"]
            self.assertEqual([p["port"] for p in wpol["ingress"][0]["ports"]], ["http"])
            self.assertEqual([p["port"] for p in wpol["egress"][0]["ports"]], [grpc])
        pools = [o for o in objs if o["kind"] == "Deployment"]
        wcfgs = [yaml.safe_load(find(objs, "ConfigMap", d["metadata"]["name"])["data"]
                                ["worker.yaml"]) for d in pools]
        own = [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] ==
               "tv-turbovid-auth"]
        if not required:
            self.assertEqual(config["auth"], {"mode": "off"})
            self.assertFalse(own)
            for d, w in zip(pools, wcfgs):
                self.assertIsNone(volume(d["spec"]["template"]["spec"], "worker-token"))
                self.assertNotIn("scheduler_token_file", w)
        else:
            auth = values["auth"]
            keys_secret = auth["apiKeys"]["existingSecret"] or "tv-turbovid-auth"
            token_secret = auth["workerToken"]["existingSecret"] or "tv-turbovid-auth"
            # Each file the scheduler reads sits in a mount of the Secret that holds it.
            for vol, secret, key, path in (("api-keys", keys_secret, "keys.yaml",
                                            config["auth"]["api_keys_file"]),
                                           ("worker-tokens", token_secret, "worker-tokens.yaml",
                                            config["auth"]["worker_tokens_file"])):
                self.assertEqual(volume(pod, vol)["secret"]["secretName"], secret)
                self.assertEqual(volume(pod, vol)["secret"]["items"], [{"key": key, "path": key}])
                self.assertEqual(path, f"{mount(c, vol)}/{key}")
                self.assertTrue(path.startswith(SECRET_DIR + "/"))
            for d, w in zip(pools, wcfgs):
                wpod = d["spec"]["template"]["spec"]
                self.assertEqual(volume(wpod, "worker-token")["secret"],
                                 {"secretName": token_secret, "defaultMode": 0o440,
                                  "items": [{"key": "worker.token", "path": "worker.token"}]})
                self.assertEqual(w["scheduler_token_file"],
                                 mount(container(d), "worker-token") + "/worker.token")
            if auth["apiKeys"]["existingSecret"] and auth["workerToken"]["existingSecret"]:
                self.assertFalse(own)
            else:
                data = secret_data(own[0])
                if not auth["apiKeys"]["existingSecret"]:
                    keys = yaml.safe_load(data["keys.yaml"])["keys"]
                    if auth["apiKeys"]["keysFile"]:
                        self.assertEqual(data["keys.yaml"], auth["apiKeys"]["keysFile"])
                        self.assertNotIn("admin-api-key", data)
                    else:
                        self.assertRegex(data["admin-api-key"], r"^tv_[A-Za-z0-9]{43}$")
                        self.assertEqual(keys, [{
                            "name": "chart-admin", "tenant": "admin", "admin": True,
                            "sha256": hashlib.sha256(data["admin-api-key"].encode()).hexdigest()}])
                else:
                    self.assertNotIn("keys.yaml", data)
                if not auth["workerToken"]["existingSecret"]:
                    if auth["workerToken"]["token"]:
                        self.assertEqual(data["worker.token"], auth["workerToken"]["token"])
                    tokens = yaml.safe_load(data["worker-tokens.yaml"])["tokens"]
                    self.assertEqual(tokens, [{
                        "name": "chart-workers", "worker_ids": [],
                        "sha256": hashlib.sha256(data["worker.token"].encode()).hexdigest()}])
        tls_vol = volume(pod, "tls")
        if not tls:
            self.assertIsNone(tls_vol)
            self.assertNotIn("tls", config)
            for w in wcfgs:
                self.assertFalse({"scheduler_ca_file", "client_cert_file"} & set(w))
            return
        secret = values["tls"]["existingSecret"] or "tv-turbovid-tls"
        self.assertEqual(tls_vol["secret"]["secretName"], secret)
        d = mount(c, "tls")
        self.assertEqual((config["tls"]["cert_file"], config["tls"]["key_file"]),
                         (f"{d}/tls.crt", f"{d}/tls.key"))
        self.assertEqual(config["tls"]["client_ca_file"],
                         f"{d}/ca.crt" if values["tls"]["mutual"] else "")
        for dep, w in zip(pools, wcfgs):
            wpod, wc = dep["spec"]["template"]["spec"], container(dep)
            # Workers get the CA only, never the scheduler's key.
            self.assertEqual(volume(wpod, "tls-ca")["secret"]["items"],
                             [{"key": "ca.crt", "path": "ca.crt"}])
            self.assertEqual(w["scheduler_ca_file"], mount(wc, "tls-ca") + "/ca.crt")
            if values["tls"]["mutual"]:
                self.assertEqual(volume(wpod, "client-tls")["secret"]["secretName"],
                                 values["tls"]["workerClientSecret"])
                self.assertEqual((w["client_cert_file"], w["client_key_file"]),
                                 (mount(wc, "client-tls") + "/tls.crt",
                                  mount(wc, "client-tls") + "/tls.key"))

    def test_bad_values_name_the_key(self):
        pool = {"name": "p", "nodeClass": "h100", "gpus": 1,
                "models": [{"model": "wan2.1-t2v-1.3b", "variant": "turbo", "path": "m"}]}
        cases = [
            ({"gpus": "two"}, "gpus"),
            ({"gpus": 9}, "gpus"),
            ({"maxJobSeconds": 0}, "maxJobSeconds"),
            ({"name": "H100"}, "name"),
            ({"gpus": 2, "tensorParallelSize": 4}, "pools[p].gpus: 2 is fewer than tensorParallelSize 4"),
            ({"autoscaling": {"enabled": True, "mode": "vpa"}}, "mode"),
            ({"models": []}, "models"),
            ({"models": [{"model": "x", "variant": "turbo"}]}, "path"),
            ({"memoryBudgetBytes": -1}, "memoryBudgetBytes"),
            ({"autoscaling": {"enabled": True, "mode": "hpa", "minReplicas": 0}},
             "pools[p].autoscaling.minReplicas: an HPA needs at least 1"),
        ]
        work = tempfile.mkdtemp(prefix="tv-helm-values-")
        try:
            for change, needle in cases:
                with self.subTest(change=change):
                    path = os.path.join(work, "values.yaml")
                    with open(path, "w") as f:
                        yaml.safe_dump({"pools": [{**pool, **change}]}, f)
                    r = helm("template", "tv", CHART, "-f", path, check=False)
                    self.assertNotEqual(r.returncode, 0, r.stdout[:300])
                    self.assertIn(needle, r.stderr)
            # The same pool unchanged renders.
            with open(path, "w") as f:
                yaml.safe_dump({"pools": [pool]}, f)
            helm("template", "tv", CHART, "-f", path)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_rendered_configs_run(self):
        """The default values' scheduler.yaml and worker.yaml, loaded by the binaries themselves
        (paths and addresses overridden for loopback) with the chart's own Secret (its generated
        admin key and worker token), serve a job; the HTTP job API wants the key."""
        objs = self.rendered["default"]
        work = tempfile.mkdtemp(prefix="tv-helm-")
        try:
            sched_cm = find(objs, "ConfigMap", "tv-turbovid-scheduler")["data"]
            worker_cm = find(objs, "ConfigMap", "tv-turbovid-worker-cpu")["data"]
            auth = secret_data(find(objs, "Secret", "tv-turbovid-auth"))
            for name, text in (("scheduler.yaml", sched_cm["scheduler.yaml"]),
                               ("models.yaml", sched_cm["models.yaml"]),
                               ("worker.yaml", worker_cm["worker.yaml"]),
                               ("keys.yaml", auth["keys.yaml"]),
                               ("worker-tokens.yaml", auth["worker-tokens.yaml"]),
                               ("worker.token", auth["worker.token"])):
                with open(os.path.join(work, name), "w") as f:
                    f.write(text)
            http, worker_http = harness.free_port(), harness.free_port()
            grpc, api = harness.free_port(), harness.free_port()
            sched = harness.Proc("scheduler", [
                harness.binary("turbovid-scheduler"), "--config", f"{work}/scheduler.yaml",
                "--listen", f"127.0.0.1:{grpc}", "--http-address", "127.0.0.1", "--http-port",
                str(http), "--api-http-address", "127.0.0.1", "--api-http-port", str(api),
                "--db", f"{work}/jobs.db", "--artifacts", f"{work}/artifacts",
                "--models", f"{work}/models.yaml", "--api-keys-file", f"{work}/keys.yaml",
                "--worker-tokens-file", f"{work}/worker-tokens.yaml"], f"{work}/scheduler.log")
            token = ["--token-file", f"{work}/worker.token"]
            worker = harness.Proc("worker", [
                harness.binary("turbovid-worker"), "--config", f"{work}/worker.yaml",
                "--scheduler", f"127.0.0.1:{grpc}", "--http-address", "127.0.0.1",
                "--http-port", str(worker_http), "--grpc-listen", "127.0.0.1:0",
                "--model", f"{harness.T2V_MODEL}:turbo={harness.MODELS_DIR}/tiny-t2v"] + token,
                f"{work}/worker.log")
            try:
                for proc, port in ((sched, http), (worker, worker_http)):
                    self.wait_ready(proc, port)
                r = subprocess.run([harness.binary("turbovid"), "generate", "--scheduler",
                                    f"127.0.0.1:{grpc}", "--model", harness.T2V_MODEL,
                                    "--prompt", "from the chart's configs", "--frames", "5",
                                    "--width", "64", "--height", "64", "--steps", "2", "--out",
                                    f"{work}/out.mp4", "--quiet", "--api-key",
                                    auth["admin-api-key"]],
                                   capture_output=True, text=True, timeout=300)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr + worker.tail())
                self.assertIn('node_class="cpu"', harness.http_get(worker_http, "/metrics")[1])
                # Auth is on: no key, no jobs; the generated admin key lists the job.
                self.assertEqual(harness.http_get(api, "/v1/videos")[0], 401)
                req = urllib.request.Request(f"http://127.0.0.1:{api}/v1/videos", headers={
                    "Authorization": f"Bearer {auth['admin-api-key']}"})
                with urllib.request.urlopen(req, timeout=10) as resp:
                    self.assertEqual(len(json.load(resp)["data"]), 1)
                # The GPU pools' configs load too (backend and models overridden: no GPU here),
                # and their workers register under their node class.
                # The H100 pool is a tensor-parallel group of 4 processes: its model needs heads
                # that split over 4 ranks.
                for pool, model in (("h100", "tiny-t2v-4heads"), ("rtx5090", "tiny-t2v")):
                    path = f"{work}/worker-{pool}.yaml"
                    with open(path, "w") as f:
                        f.write(find(self.rendered["mixed-fleet"], "ConfigMap",
                                     f"tv-turbovid-worker-{pool}")["data"]["worker.yaml"])
                    port = harness.free_port()
                    gpu = harness.Proc(pool, [
                        harness.binary("turbovid-worker"), "--config", path, "--backend", "cpu",
                        "--scheduler", f"127.0.0.1:{grpc}", "--http-address", "127.0.0.1",
                        "--http-port", str(port), "--grpc-listen", "127.0.0.1:0",
                        "--model", f"{harness.T2V_MODEL}:turbo={harness.MODELS_DIR}/{model}"]
                        + token, f"{work}/worker-{pool}.log")
                    try:
                        self.wait_ready(gpu, port)
                        self.wait_metric(http, f'turbovid_workers{{node_class="{pool}",'
                                               'state="idle"} 1')
                    finally:
                        self.assertEqual(gpu.stop(), 0, gpu.tail())
            finally:
                worker.stop()
                sched.stop()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def wait_metric(self, port, line, timeout=30):
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in harness.http_get(port, "/metrics")[1]:
                return
            time.sleep(0.1)
        self.fail(f"{line} not in the scheduler's metrics")

    def wait_ready(self, proc, port, timeout=120):
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assertTrue(proc.alive(), proc.tail())
            if harness.http_get(port, "/readyz")[0] == 200:
                return
            time.sleep(0.1)
        self.fail(f"{proc.name} not ready:\n{proc.tail()}")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
