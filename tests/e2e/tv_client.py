"""A small Python grpcio client of turbovid.v1.VideoService (stubs from the tv_proto_python target).

Import after putting <build>/python on sys.path (harness.py does). Used by the e2e tests and usable
on its own:
    /usr/bin/python3 tests/e2e/tv_client.py --build-dir build --scheduler 127.0.0.1:50051 \
        generate --model tiny-t2v --prompt "a fox" --frames 5 --width 64 --height 64 --out fox.mp4
"""
import argparse
import os
import sys
import uuid

import grpc


def _stubs():
    from turbovid.v1 import video_service_pb2 as pb  # noqa: E402  (generated)
    from turbovid.v1 import video_service_pb2_grpc as pb_grpc
    return pb, pb_grpc


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# common/limits.h kGrpcMessageBytes: the send/receive cap of every channel.
GRPC_MESSAGE_BYTES = 64 << 20

FINAL_STATES = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")


class _ApiKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <key>` to every call."""

    def __init__(self, key):
        self.metadata = ("authorization", f"Bearer {key}")

    def _add(self, details):
        metadata = list(details.metadata or []) + [self.metadata]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._add(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._add(details), request)


class VideoClient:
    def __init__(self, address, timeout=30.0, api_key=None, ca_cert=None, client_cert=None):
        """api_key / ca_cert (a PEM path: TLS) default to TURBOVID_API_KEY / TURBOVID_CA_CERT;
        client_cert: (cert PEM path, key PEM path) for mutual TLS."""
        self.pb, pb_grpc = _stubs()
        api_key = api_key if api_key is not None else os.environ.get("TURBOVID_API_KEY", "")
        ca_cert = ca_cert if ca_cert is not None else os.environ.get("TURBOVID_CA_CERT", "")
        options = [("grpc.max_receive_message_length", GRPC_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", GRPC_MESSAGE_BYTES)]
        if ca_cert:
            chain = key = None
            if client_cert:
                chain, key = (_read(p) for p in client_cert)
            with open(ca_cert, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read(), private_key=key,
                                                     certificate_chain=chain)
            self.channel = grpc.secure_channel(address, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        self.raw_channel = self.channel
        if api_key:
            self.channel = grpc.intercept_channel(self.channel, _ApiKey(api_key))
        self.stub = pb_grpc.VideoServiceStub(self.channel)
        self.timeout = timeout

    def close(self):
        self.raw_channel.close()

    def state_name(self, job):
        return self.pb.JobState.Name(job.state)

    def stage_name(self, job):
        return self.pb.Stage.Name(job.stage)

    def request(self, model, prompt, frames=5, width=64, height=64, steps=2, seed=1, image=b"",
                request_id=None, attention=0, **extra):
        r = self.pb.SubmitVideoRequest(
            model_id=model, prompt=prompt, num_frames=frames, num_steps=steps, seed=seed,
            image=image, attention=attention,
            client_request_id=request_id if request_id is not None else uuid.uuid4().hex,
            size=self.pb.VideoSize(width_pixels=width, height_pixels=height))
        for k, v in extra.items():
            setattr(r, k, v)
        return r

    def submit(self, request, wait_for_ready=True, retry_seconds=20.0):
        """SubmitVideo; UNAVAILABLE is retried with the same client_request_id (the scheduler
        returns the same job for it), e.g. across a scheduler restart."""
        import time
        deadline = time.monotonic() + retry_seconds
        delay = 0.1
        while True:
            try:
                return self.stub.SubmitVideo(request, timeout=self.timeout,
                                             wait_for_ready=wait_for_ready).job
            except grpc.RpcError as e:
                if (e.code() != grpc.StatusCode.UNAVAILABLE or not request.client_request_id
                        or time.monotonic() + delay > deadline):
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def get(self, job_id):
        return self.stub.GetJob(self.pb.GetJobRequest(job_id=job_id), timeout=self.timeout)

    def cancel(self, job_id):
        return self.stub.CancelJob(self.pb.CancelJobRequest(job_id=job_id), timeout=self.timeout)

    def list(self, state=0, model="", page_size=1000):
        jobs, token = [], ""
        while True:
            resp = self.stub.ListJobs(self.pb.ListJobsRequest(
                state=state, model_id=model, page_size=page_size, page_token=token),
                timeout=self.timeout)
            jobs.extend(resp.jobs)
            token = resp.next_page_token
            if not token:
                return jobs

    def watch(self, job_id, timeout=300.0):
        """Yields Job snapshots until a final state (one stream; raises grpc.RpcError on failure)."""
        for job in self.stub.WatchJob(self.pb.WatchJobRequest(job_id=job_id), timeout=timeout):
            yield job
            if self.state_name(job) in FINAL_STATES:
                return

    def wait(self, job_id, timeout=300.0, on_update=None):
        """Follows the job to a final state, reconnecting across scheduler restarts."""
        import time
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                for job in self.watch(job_id, timeout=max(1.0, deadline - time.monotonic())):
                    last = job
                    if on_update:
                        on_update(job)
                if last is not None and self.state_name(last) in FINAL_STATES:
                    return last
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                    grpc.StatusCode.CANCELLED):
                    raise
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} not final after {timeout}s (last: {last})")

    def download(self, job_id):
        data = bytearray()
        for chunk in self.stub.GetVideo(self.pb.GetVideoRequest(job_id=job_id),
                                        timeout=self.timeout * 4):
            assert chunk.offset == len(data), (chunk.offset, len(data))
            data += chunk.data
        return bytes(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--scheduler", default="127.0.0.1:50051")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--model", required=True)
    g.add_argument("--prompt", required=True)
    g.add_argument("--image")
    g.add_argument("--frames", type=int, default=5)
    g.add_argument("--width", type=int, default=64)
    g.add_argument("--height", type=int, default=64)
    g.add_argument("--steps", type=int, default=2)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", required=True)
    s = sub.add_parser("status")
    s.add_argument("job_id")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.build_dir, "python"))
    client = VideoClient(args.scheduler)
    if args.cmd == "status":
        print(client.get(args.job_id))
        return 0
    image = open(args.image, "rb").read() if args.image else b""
    job = client.submit(client.request(args.model, args.prompt, args.frames, args.width,
                                       args.height, args.steps, args.seed, image))

    def show(j):
        print(f"{client.state_name(j)} {client.stage_name(j)} step {j.step}/{j.num_steps} "
              f"{j.progress * 100:.0f}%", file=sys.stderr)
    final = client.wait(job.job_id, on_update=show)
    if client.state_name(final) != "JOB_STATE_SUCCEEDED":
        print(f"job {final.job_id} ended {client.state_name(final)}: {final.error}", file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(client.download(final.job_id))
    print(f"{final.job_id} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
