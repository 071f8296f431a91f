"""A WorkerHub client written here in Python (grpcio stubs from tv_proto_python): it registers
like a worker and answers each AssignTask with whatever bytes the test gives it, as a rogue or
broken worker holding a valid token would. Import after harness (which puts <build>/python on
sys.path)."""
import queue
import threading

import grpc


class RogueWorker:
    def __init__(self, address, worker_id, models, token=None, node_class="cpu"):
        """models: [(model_id, variant)] it claims to serve."""
        from turbovid.v1 import worker_hub_pb2 as hub
        from turbovid.v1 import worker_hub_pb2_grpc as hub_grpc
        self.hub = hub
        self.worker_id = worker_id
        self.channel = grpc.insecure_channel(address)
        self.outbox = queue.Queue()
        self.assigns = queue.Queue()
        self.registered = threading.Event()
        metadata = [("authorization", f"Bearer {token}")] if token else None
        register = hub.RegisterWorker(worker_id=worker_id, node_class=node_class, gpu_name="cpu",
                                      gpu_count=1, max_concurrent_tasks=1)
        for model_id, variant in models:
            register.models.add(model_id=model_id, variant=variant, loaded=True)
        self.outbox.put(hub.WorkerMessage(register=register))
        self.stream = hub_grpc.WorkerHubStub(self.channel).Connect(self._messages(),
                                                                   metadata=metadata)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.registered.wait(20):
            raise TimeoutError(f"rogue worker {worker_id} not registered")

    def _messages(self):
        while True:
            message = self.outbox.get()
            if message is None:
                return
            yield message

    def _read(self):
        try:
            for message in self.stream:
                kind = message.WhichOneof("kind")
                if kind == "registered":
                    self.registered.set()
                elif kind == "assign":
                    self.assigns.put(message.assign)
        except grpc.RpcError:
            pass

    def next_task(self, timeout=30):
        return self.assigns.get(timeout=timeout)

    def answer(self, task, video, chunk=64 << 10):
        """Uploads `video` (bytes) as the task's result and reports success."""
        hub = self.hub
        for offset in range(0, len(video), chunk):
            self.outbox.put(hub.WorkerMessage(chunk=hub.ResultChunk(
                task_id=task.task_id, attempt=task.attempt, offset=offset,
                data=video[offset:offset + chunk])))
        self.outbox.put(hub.WorkerMessage(result=hub.TaskResult(
            task_id=task.task_id, attempt=task.attempt, ok=True, video_bytes=len(video),
            run_seconds=0.5)))

    def close(self):
        self.outbox.put(None)
        self.stream.cancel()
        self.channel.close()
