"""The attack run: the service attacked on loopback as an outsider would, with the figures that
docs/reliability.md reports. Real processes only (the e2e harness: a scheduler, CPU workers, the
tiny checkpoints). Parts:

  bad_inputs   malformed requests on gRPC (every SubmitVideoRequest field out of range, unparseable
               bytes, bad ids and page tokens on every RPC) and on both HTTP APIs (native JSON and
               OpenAI-compatible: bad JSON, wrong types, oversized bodies, broken multipart, bad
               ids and paths, wrong methods). Handled = an error answer (gRPC: not OK, not
               UNKNOWN/INTERNAL; HTTP: 4xx) in time, nothing stored, every process alive.
  burst        N submits from 32 client threads to a scheduler whose model has no worker (they
               queue): submits/s, the scheduler's resident memory before and after, pagination
               (every job exactly once over pages of 100).
  kill         kill -9 of a worker mid-job and of the scheduler with jobs queued and running,
               restarts: every acknowledged job ends SUCCEEDED, none lost, none finished twice.
  database     the scheduler stopped, its database damaged (bytes overwritten; truncated to 0):
               the start refuses with a clear message, `turbovid-scheduler recover` salvages.
  rogue        with authentication on: a worker without a token, one with a wrong token, and a
               worker id taken by a second worker with another credential are refused.
  slowloris    1,000 idle half-sent HTTP requests on the ops port: /healthz and /metrics latency.

Usage: python3 tests/e2e/attack.py [--json FILE] [--burst N] [--parts bad_inputs,burst,...]
       (TV_BUILD_DIR / TV_E2E_MODELS as for the e2e tests). Exit status 0 when nothing was lost
       and every attack was handled. ctest runs it as e2e_attack (--burst 500).
"""
import argparse
import base64
import collections
import concurrent.futures
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402

import harness  # noqa: E402

SHORT = dict(frames=5, width=64, height=64, steps=2)
MEDIUM = dict(frames=17, width=128, height=128, steps=4)
BAD_GRPC = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.OK)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def png_header_only(width, height):
    """A PNG whose header declares width x height but whose data is one tiny deflate stream: a
    decompression bomb by its declared size."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


class Figures:
    def __init__(self):
        self.parts = collections.OrderedDict()
        self.problems = []

    def add(self, part, **kv):
        self.parts.setdefault(part, {}).update(kv)

    def problem(self, part, what):
        self.problems.append(f"{part}: {what}")
        print(f"  PROBLEM {part}: {what}", flush=True)


# --- bad inputs ------------------------------------------------------------------------------

def grpc_cases(client):
    """(name, callable) pairs; each call must raise a handled grpc.RpcError."""
    pb, stub, r = client.pb, client.stub, client.request
    T2V, I2V = harness.T2V_MODEL, harness.I2V_MODEL
    png = harness.make_png()
    cases = []

    def submit(name, request):
        cases.append((f"SubmitVideo {name}",
                      lambda: stub.SubmitVideo(request, timeout=30)))

    for frames in (2, 80, 100_001, -5):
        submit(f"num_frames={frames}", r(T2V, "x", **dict(SHORT, frames=frames)))
    for w in (8, 70, 100_000, -64):
        submit(f"width={w}", r(T2V, "x", **dict(SHORT, width=w)))
    for h in (8, 72, 100_000, -64):
        submit(f"height={h}", r(T2V, "x", **dict(SHORT, height=h)))
    submit("width*height over max_pixels", r(T2V, "x", **dict(SHORT, width=4096, height=4096)))
    for steps in (-1, 5, 1000):
        submit(f"num_steps={steps}", r(T2V, "x", **dict(SHORT, steps=steps)))
    submit("empty prompt", r(T2V, "", **SHORT))
    submit("1 MiB prompt", r(T2V, "p" * (1 << 20), **SHORT))
    submit("1 MiB negative_prompt", r(T2V, "x", negative_prompt="n" * (1 << 20), **SHORT))
    for model in ("", "no-such-model", "../../etc/passwd", "m" * 10_000):
        submit(f"model_id={model[:20]!r}", r(model, "x", **SHORT))
    submit("unknown variant", r(T2V, "x", variant="turbo-nope", **SHORT))
    submit("variant 10k chars", r(T2V, "x", variant="v" * 10_000, **SHORT))
    submit("I2V without image", r(I2V, "x", **SHORT))
    submit("I2V corrupt image", r(I2V, "x", image=b"\x89PNG\r\n\x1a\nnot a png", **SHORT))
    submit("I2V truncated PNG", r(I2V, "x", image=png[: len(png) // 2], **SHORT))
    submit("I2V random bytes", r(I2V, "x", image=os.urandom(4096), **SHORT))
    submit("I2V 100000x100000 PNG header", r(I2V, "x", image=png_header_only(100_000, 100_000),
                                            **SHORT))
    submit("I2V image over 10 MiB", r(I2V, "x", image=png + b"\0" * (11 << 20), **SHORT))
    submit("T2V with an image", r(T2V, "x", image=png, **SHORT))
    submit("attention=99", r(T2V, "x", attention=99, **SHORT))
    submit("client_request_id 1 MiB", r(T2V, "x", request_id="c" * (1 << 20), **SHORT))
    submit("deadline in the past", r(T2V, "x", deadline_unix_seconds=1.0, **SHORT))
    submit("both deadlines", r(T2V, "x", deadline_unix_seconds=time.time() + 60,
                               deadline_seconds=60, **SHORT))
    submit("negative deadline_seconds", r(T2V, "x", deadline_seconds=-5, **SHORT))
    submit("NaN deadline_seconds", r(T2V, "x", deadline_seconds=float("nan"), **SHORT))
    submit("unknown priority_class", r(T2V, "x", priority_class="platinum", **SHORT))

    raw_submit = client.channel.unary_unary("/turbovid.v1.VideoService/SubmitVideo")
    for name, payload in [("invalid UTF-8 prompt",
                           b"\x0a\x08" + T2V.encode() + b"\x1a\x06\xff\xfe bad"),
                          ("truncated protobuf", b"\x0a\xff\xff\xff\x0f"),
                          ("random bytes", os.urandom(2048)),
                          ("wrong wire type", b"\x0d\x00\x00\x00\x00" * 4)]:
        cases.append((f"SubmitVideo raw {name}",
                      lambda p=payload: raw_submit(p, timeout=30)))

    for job_id in ("", "no-such-job", "../../../etc/passwd", "j" * (1 << 20), "\x00\x01"):
        label = repr(job_id[:20])
        cases += [
            (f"GetJob {label}", lambda j=job_id: stub.GetJob(pb.GetJobRequest(job_id=j),
                                                             timeout=30)),
            (f"CancelJob {label}", lambda j=job_id: stub.CancelJob(
                pb.CancelJobRequest(job_id=j), timeout=30)),
            (f"DeleteJob {label}", lambda j=job_id: stub.DeleteJob(
                pb.DeleteJobRequest(job_id=j), timeout=30)),
            (f"GetVideo {label}", lambda j=job_id: list(stub.GetVideo(
                pb.GetVideoRequest(job_id=j), timeout=30))),
            (f"WatchJob {label}", lambda j=job_id: list(stub.WatchJob(
                pb.WatchJobRequest(job_id=j), timeout=30))),
        ]
    for name, req in [("page_size=-1", pb.ListJobsRequest(page_size=-1)),
                      ("page_size=100000", pb.ListJobsRequest(page_size=100_000)),
                      ("forged page_token", pb.ListJobsRequest(page_token="AAAA" * 50)),
                      ("garbage page_token", pb.ListJobsRequest(page_token="\x00\xff" * 10)),
                      ("page_token and after_job_id",
                       pb.ListJobsRequest(page_token="x", after_job_id="y")),
                      ("state=99", pb.ListJobsRequest(state=99))]:
        cases.append((f"ListJobs {name}", lambda q=req: stub.ListJobs(q, timeout=30)))
    return cases


def http_request(port, method, path, body=None, headers=None, timeout=10):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_cases():
    """(name, method, path, body, headers): every one must get a 4xx."""
    js = {"Content-Type": "application/json"}
    T2V = harness.T2V_MODEL
    good = {"model_id": T2V, "prompt": "x", "num_frames": 5,
            "size": {"width_pixels": 64, "height_pixels": 64}}
    cases = []
    for name, body in [("not JSON", b"{not json"), ("JSON array", b"[1,2,3]"),
                       ("JSON string", b'"hello"'), ("empty body", b""),
                       ("nested 10k deep", b"[" * 10_000 + b"]" * 10_000),
                       ("num_frames a string", json.dumps(dict(good, num_frames="many")).encode()),
                       ("num_frames 1e30", json.dumps(dict(good, num_frames=1e30)).encode()),
                       ("size a list", json.dumps(dict(good, size=[64, 64])).encode()),
                       ("unknown field", json.dumps(dict(good, gpu="all")).encode()),
                       ("image not base64", json.dumps(dict(good, model_id=harness.I2V_MODEL,
                                                            image="%%%")).encode()),
                       ("prompt missing", json.dumps({"model_id": T2V}).encode()),
                       ("invalid UTF-8", b'{"model_id":"' + T2V.encode() + b'","prompt":"\xff"}'),
                       ("body 40 MiB", b'{"prompt":"' + b"a" * (40 << 20) + b'"}')]:
        cases.append((f"POST /turbovid/v1/jobs {name}", "POST", "/turbovid/v1/jobs", body, js))
    for name, body, headers in [
            ("OpenAI: bad JSON", b"{", js),
            ("OpenAI: OpenAI model name", json.dumps({"model": "sora-2", "prompt": "x"}).encode(),
             js),
            ("OpenAI: seconds=-4", json.dumps({"prompt": "x", "seconds": "-4"}).encode(), js),
            ("OpenAI: seconds=999", json.dumps({"prompt": "x", "seconds": "999"}).encode(), js),
            ("OpenAI: size=abc", json.dumps({"prompt": "x", "size": "abc"}).encode(), js),
            ("OpenAI: size 99999x99999", json.dumps({"prompt": "x", "size": "99999x99999"})
             .encode(), js),
            ("OpenAI: image_url http", json.dumps({"prompt": "x", "input_reference": {
                "image_url": "http://127.0.0.1:1/x.png"}}).encode(), js),
            ("OpenAI: file_id", json.dumps({"prompt": "x", "input_reference": {
                "file_id": "file-1"}}).encode(), js),
            ("OpenAI: multipart without boundary", b"--x\r\n", {"Content-Type":
                                                                "multipart/form-data"}),
            ("OpenAI: multipart truncated", b"--zz\r\nContent-Disposition: form-data; "
             b'name="prompt"\r\n\r\nhello', {"Content-Type": "multipart/form-data; boundary=zz"}),
            ("OpenAI: text/plain body", b"prompt=x", {"Content-Type": "text/plain"})]:
        cases.append((f"POST /v1/videos {name}", "POST", "/v1/videos", body, headers))
    for path in ("/turbovid/v1/jobs/no-such-job", "/turbovid/v1/jobs/..%2F..%2Fetc%2Fpasswd",
                 "/turbovid/v1/jobs/" + "j" * 8000, "/turbovid/v1/jobs/no-such-job/video",
                 "/v1/videos/no-such-video", "/v1/videos/no-such-video/content",
                 "/v1/videos/%00", "/turbovid/v1/jobs?page_size=-3",
                 "/turbovid/v1/jobs?page_token=%ff%fe", "/turbovid/v1/jobs?state=BOGUS",
                 "/v1/videos?limit=-1", "/v1/videos?after=no-such", "/no/such/route",
                 "/../../etc/passwd"):
        cases.append((f"GET {path[:60]}", "GET", path, None, {}))
    for method, path in (("DELETE", "/v1/videos/no-such-video"),
                         ("POST", "/turbovid/v1/jobs/no-such-job:cancel"),
                         ("PUT", "/turbovid/v1/jobs"), ("PATCH", "/v1/videos"),
                         ("DELETE", "/turbovid/v1/jobs")):
        cases.append((f"{method} {path}", method, path, b"", {}))
    return cases


def part_bad_inputs(fig):
    c = harness.Cluster("attack-bad", workers=1)
    try:
        client = c.client()
        ok = client.submit(client.request(harness.T2V_MODEL, "baseline", **SHORT))
        done = client.wait(ok.job_id, 180)
        if client.state_name(done) != "JOB_STATE_SUCCEEDED":
            fig.problem("bad_inputs", f"baseline job {done.state}: {done.error}")
        before = [j.SerializeToString() for j in client.list()]
        tried = handled = 0
        codes = collections.Counter()
        t0 = time.monotonic()
        for name, call in grpc_cases(client):
            tried += 1
            try:
                call()
                fig.problem("bad_inputs", f"gRPC {name}: accepted")
                codes["OK"] += 1
            except grpc.RpcError as e:
                codes[e.code().name] += 1
                if e.code() in BAD_GRPC or e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    fig.problem("bad_inputs", f"gRPC {name}: {e.code().name} {e.details()}")
                else:
                    handled += 1
        grpc_tried, grpc_handled = tried, handled
        for name, method, path, body, headers in http_cases():
            tried += 1
            try:
                status, _ = http_request(c.api_port, method, path, body, headers)
            except (OSError, urllib.error.URLError) as e:
                # A connection the server closes on an oversized body still answers the attack;
                # a timeout does not.
                status = "closed" if "timed out" not in str(e) else "timeout"
            codes[f"HTTP {status}"] += 1
            if status == "closed" or (isinstance(status, int) and 400 <= status < 500):
                handled += 1
            else:
                fig.problem("bad_inputs", f"HTTP {name}: {status}")
        seconds = time.monotonic() - t0
        after = [j.SerializeToString() for j in client.list()]
        alive = c.scheduler.alive() and all(w.alive() for w in c.workers.values())
        if after != before:
            fig.problem("bad_inputs", f"jobs changed: {len(before)} before, {len(after)} after")
        if not alive:
            fig.problem("bad_inputs", "a process died")
        status, _ = harness.http_get(c.http_port, "/healthz")
        fig.add("bad_inputs", tried=tried, handled=handled, grpc_tried=grpc_tried,
                grpc_handled=grpc_handled, http_tried=tried - grpc_tried,
                http_handled=handled - grpc_handled, jobs_stored=len(after) - len(before),
                processes_alive=alive, healthz_after=status, seconds=round(seconds, 1),
                answers=dict(codes))
    finally:
        c.close()


# --- burst ------------------------------------------------------------------------------------

def part_burst(fig, n):
    c = harness.Cluster("attack-burst", workers=0)
    try:
        clients = [c.client() for _ in range(32)]
        rss0 = rss_bytes(c.scheduler.pid)
        errors = collections.Counter()
        ids = []
        lock = threading.Lock()

        def one(i):
            cl = clients[i % len(clients)]
            try:
                job = cl.submit(cl.request(harness.T2V_MODEL, f"burst {i}", **SHORT),
                                wait_for_ready=False, retry_seconds=0)
                with lock:
                    ids.append(job.job_id)
            except grpc.RpcError as e:
                with lock:
                    errors[e.code().name] += 1

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(one, range(n)))
        seconds = time.monotonic() - t0
        rss1 = rss_bytes(c.scheduler.pid)
        seen = []
        token = ""
        pb = clients[0].pb
        while True:
            resp = clients[0].stub.ListJobs(pb.ListJobsRequest(page_size=100, page_token=token),
                                            timeout=30)
            seen += [j.job_id for j in resp.jobs]
            token = resp.next_page_token
            if not token:
                break
        exact = sorted(seen) == sorted(ids) and len(set(seen)) == len(seen)
        if not exact:
            fig.problem("burst", f"pagination: {len(seen)} listed ({len(set(seen))} distinct), "
                                 f"{len(ids)} acknowledged")
        if errors:
            fig.problem("burst", f"refused submits: {dict(errors)}")
        fig.add("burst", submitted=n, acknowledged=len(ids), clients=32,
                submits_per_second=round(n / seconds), seconds=round(seconds, 2),
                scheduler_rss_mb_before=round(rss0 / 2**20, 1),
                scheduler_rss_mb_after=round(rss1 / 2**20, 1), pages_exact=exact,
                refused=dict(errors))
    finally:
        c.close()


# --- kill -9 ----------------------------------------------------------------------------------

def count_succeeded_lines(paths, job_ids):
    counts = collections.Counter()
    for p in paths:
        with open(p, errors="replace") as f:
            for line in f:
                if line.rstrip().endswith(": succeeded"):
                    for j in job_ids:
                        if f"job {j}:" in line:
                            counts[j] += 1
    return counts


def part_kill(fig):
    c = harness.Cluster("attack-kill", workers=2)
    logs = [c.scheduler.log_path]
    try:
        client = c.client()
        jobs = [client.submit(client.request(harness.T2V_MODEL, f"kill {i}", **MEDIUM)).job_id
                for i in range(6)]
        # kill -9 of a worker once it runs a job.
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            for j in jobs:
                job = client.get(j)
                if client.state_name(job) == "JOB_STATE_RUNNING" and job.worker_id:
                    victim = job.worker_id
                    break
            time.sleep(0.05)
        if victim is None:
            fig.problem("kill", "no job started running")
            return
        c.workers[victim].kill9()
        c.start_worker(victim)  # it comes back, as a supervisor would restart it
        # kill -9 of the scheduler with jobs still queued and running; then a restart.
        time.sleep(1.0)
        c.scheduler.kill9()
        time.sleep(0.5)
        c.start_scheduler()  # its log is appended to the same file
        more = [client.submit(client.request(harness.T2V_MODEL, f"after {i}", **SHORT)).job_id
                for i in range(2)]
        final = {j: client.wait(j, 300) for j in jobs + more}
        states = collections.Counter(client.state_name(f) for f in final.values())
        succeeded = states.get("JOB_STATE_SUCCEEDED", 0)
        finished = count_succeeded_lines(logs, jobs + more)
        twice = [j for j, n in finished.items() if n > 1]
        once = sum(1 for n in finished.values() if n == 1)
        if once + len(twice) != len(jobs + more):
            fig.problem("kill", f"{once} jobs logged 'succeeded' once, of {len(jobs + more)}")
        lost = [j for j in jobs + more if j not in final]
        downloads = sum(1 for j, f in final.items()
                        if client.state_name(f) == "JOB_STATE_SUCCEEDED"
                        and len(client.download(j)) == f.video_bytes)
        if succeeded != len(jobs + more):
            fig.problem("kill", f"states {dict(states)}")
        if twice:
            fig.problem("kill", f"finished twice: {twice}")
        fig.add("kill", jobs=len(jobs + more), succeeded=succeeded, lost=len(lost),
                finished_once=once, finished_twice=len(twice), videos_downloaded=downloads,
                attempts=sum(f.attempts for f in final.values()), killed=[victim, "scheduler"])
    finally:
        c.close()


# --- database damage --------------------------------------------------------------------------

def part_database(fig):
    """Four damages of a stopped scheduler's database (header bytes, a page in the middle, the
    second half cut off, truncated to 0 bytes): each start must refuse, naming the way out; the
    first three are salvaged by `turbovid-scheduler recover`."""
    c = harness.Cluster("attack-db", workers=0)
    page = 4096
    try:
        client = c.client()
        ids = [client.submit(client.request(harness.T2V_MODEL, f"db {i} " + "p" * 2000,
                                            **SHORT)).job_id for i in range(200)]
        c.scheduler.stop()
        db = os.path.join(c.dir, "jobs.db")
        with open(db, "rb") as f:
            pristine = f.read()
        pages = len(pristine) // page
        results = {}
        for kind in ("header", "page", "half", "empty"):
            path = os.path.join(c.dir, f"{kind}.db")
            data = bytearray(pristine)
            if kind == "header":
                data[0:100] = os.urandom(100)
            elif kind == "page":
                data[(pages // 2) * page:(pages // 2 + 1) * page] = os.urandom(page)
            elif kind == "half":
                data = data[:(pages // 2) * page]
            else:
                data = b""
            with open(path, "wb") as f:
                f.write(bytes(data))
            with open(path + ".initialized", "w") as f:  # the store held jobs
                f.write("")
            log_path = os.path.join(c.dir, f"scheduler-{kind}.log")
            argv = [a if a != db else path for a in c.scheduler_argv()]
            proc = harness.Proc(f"scheduler-{kind}", argv, log_path)
            try:
                rc = proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                rc = None
                proc.stop()
            with open(log_path, errors="replace") as f:
                log = f.read()
            way_out = "--allow-empty-db" if kind == "empty" else "recover"
            refused = rc not in (None, 0) and way_out in log
            r = subprocess.run([harness.binary("turbovid-scheduler"), "recover", "--db", path,
                                "--out", os.path.join(c.dir, f"recovered-{kind}.db")],
                               capture_output=True, text=True, timeout=120)
            copied = 0
            for word in r.stdout.split():
                if word.startswith("copied="):
                    copied = int(word.split("=")[1])
            results[kind] = {"start refused": refused, "recovered jobs": copied}
            if not refused:
                fig.problem("database", f"{kind}: start not refused (exit {rc})")
            if kind != "empty" and copied == 0:
                fig.problem("database", f"{kind}: recover salvaged nothing ({r.stdout.strip()})")
        fig.add("database", jobs=len(ids), damages=len(results),
                refused=sum(v["start refused"] for v in results.values()), **results)
    finally:
        c.close()


# --- rogue workers ----------------------------------------------------------------------------

def part_rogue(fig):
    """With authentication on: workers without a token, with a wrong token, and with a valid but
    different token under the id of the connected worker w0 must all be refused; a job afterwards
    still runs on w0."""
    c = harness.Cluster("attack-rogue", workers=1, tenants=["acme"])
    try:
        other = "wt-" + os.urandom(8).hex()
        c.write_worker_tokens([("pool", c.worker_token, []), ("other", other, [])])
        time.sleep(1.5)  # the scheduler reloads the token file
        outcomes = {}
        for name, token, wid in (("no token", None, "rogue1"), ("wrong token", "wt-wrong", "rogue2"),
                                 ("w0's id, another valid token", other, "w0")):
            port = harness.free_port()
            argv = [harness.binary("turbovid-worker"), "--worker-id", wid, "--scheduler",
                    c.address, "--backend", "cpu", "--node-class", "cpu", "--http-address",
                    "127.0.0.1", "--http-port", str(port), "--grpc-listen",
                    f"127.0.0.1:{harness.free_port()}"] + harness.model_flags(
                        harness.T2V_MODEL, os.path.join(harness.MODELS_DIR, "tiny-t2v"))
            env = {k: v for k, v in os.environ.items() if k != "TURBOVID_WORKER_TOKEN"}
            if token:
                env["TURBOVID_WORKER_TOKEN"] = token
            p = harness.Proc(f"rogue-{wid}", argv, os.path.join(c.dir, f"rogue-{wid}.log"), env)
            deadline = time.monotonic() + 30
            refused = False
            while time.monotonic() < deadline and not refused:
                time.sleep(0.3)
                with open(p.log_path, errors="replace") as f:
                    log = f.read()
                refused = any(code in log for code in (
                    "UNAUTHENTICATED", "PERMISSION_DENIED", "ALREADY_EXISTS",
                    "held by a connected worker with another credential"))
            p.stop(grace=5)
            outcomes[name] = refused
            if not refused:
                fig.problem("rogue", f"{name}: not refused")
        client = c.client(api_key=c.keys["acme"])
        job = client.submit(client.request(harness.T2V_MODEL, "after rogues", **SHORT))
        done = client.wait(job.job_id, 180)
        if client.state_name(done) != "JOB_STATE_SUCCEEDED" or done.worker_id != "w0":
            fig.problem("rogue", f"job after the rogues: {done.state} on {done.worker_id}")
        fig.add("rogue", tried=len(outcomes), refused=sum(outcomes.values()),
                job_after_ran_on=done.worker_id, w0_alive=c.workers["w0"].alive())
    finally:
        c.close()


# --- slow-loris -------------------------------------------------------------------------------

def part_slowloris(fig, sockets=1000):
    c = harness.Cluster("attack-loris", workers=0)
    held = []
    try:
        for _ in range(sockets):
            s = socket.create_connection(("127.0.0.1", c.http_port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            held.append(s)
        lat = {}
        for path in ("/healthz", "/readyz", "/metrics"):
            t0 = time.monotonic()
            status, _ = harness.http_get(c.http_port, path, timeout=10)
            lat[path] = (status, round((time.monotonic() - t0) * 1000, 1))
            if status != 200 or lat[path][1] > 1000:
                fig.problem("slowloris", f"{path}: {lat[path]}")
        fig.add("slowloris", idle_connections=len(held),
                **{f"{p} ms": v[1] for p, v in lat.items()},
                scheduler_alive=c.scheduler.alive())
    finally:
        for s in held:
            s.close()
        c.close()


PARTS = {"bad_inputs": part_bad_inputs, "burst": part_burst, "kill": part_kill,
         "database": part_database, "rogue": part_rogue, "slowloris": part_slowloris}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--burst", type=int, default=2000, help="jobs in the burst")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma list of " + ",".join(PARTS))
    args = ap.parse_args()
    fig = Figures()
    t0 = time.monotonic()
    for name in args.parts.split(","):
        print(f"== {name}", flush=True)
        t = time.monotonic()
        try:
            if name == "burst":
                PARTS[name](fig, args.burst)
            else:
                PARTS[name](fig)
        except Exception as e:  # a part that cannot run is a finding too
            fig.problem(name, f"{type(e).__name__}: {e}")
        print(f"   {json.dumps(fig.parts.get(name, {}))}  ({time.monotonic() - t:.1f} s)",
              flush=True)
    out = {"date": time.strftime("%Y-%m-%d"), "seconds": round(time.monotonic() - t0, 1),
           "parts": fig.parts, "problems": fig.problems}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    print(f"== attack: {len(fig.problems)} problem(s) in {out['seconds']} s")
    for p in fig.problems:
        print(f"   {p}")
    return 1 if fig.problems else 0


if __name__ == "__main__":
    sys.exit(main())
