// Worker: the WorkerHub session (register, heartbeats, assignments, cancels), the task thread
// and the drain / stop / poisoned-backend exits.
#include "worker/worker.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/limits.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "engine/backends/backends.h"
#include "worker/group.h"
#include "worker/nvml.h"

namespace turbovid::worker {

// One WorkerHub.Connect stream. Writes are serialised; a failed write marks it broken.
struct Worker::Session {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::SchedulerMessage>> stream;
  std::mutex write_mu;
  bool writes_closed = false;             // under write_mu
  std::atomic<bool> broken{false};        // the read side ended or a write failed
  std::atomic<bool> close_requested{false};
  std::atomic<bool> registered{false};    // the Registered reply arrived
  std::mutex hb_mu;
  std::condition_variable hb_cv;          // wakes the heartbeat thread early
  std::atomic<double> heartbeat_seconds{2.0};  // set by the reader, read by the heartbeat

  bool Write(const v1::WorkerMessage& message) {
    std::lock_guard<std::mutex> lock(write_mu);
    if (writes_closed || broken.load()) return false;
    if (!stream->Write(message)) {
      broken.store(true);
      return false;
    }
    return true;
  }
  void CloseWrites() {
    std::lock_guard<std::mutex> lock(write_mu);
    if (writes_closed || broken.load()) return;
    writes_closed = true;
    stream->WritesDone();
  }
  void Wake() {
    std::lock_guard<std::mutex> lock(hb_mu);
    hb_cv.notify_all();
  }
};

Worker::Worker(WorkerConfig config, engine::Backend& backend, ModelSet& models,
               WorkerMetrics& metrics, WorkerGroup* group, std::string token,
               std::shared_ptr<grpc::ChannelCredentials> credentials)
    : config_(std::move(config)),
      backend_(backend),
      group_(group),
      models_(models),
      metrics_(metrics),
      token_(std::move(token)),
      credentials_(std::move(credentials)) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnection pacing is ours (backoff + jitter below), keep gRPC's own short.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // AssignTask carries the I2V image: gRPC's default 4 MiB receive cap is below admission's.
  args.SetMaxSendMessageSize(static_cast<int>(common::kGrpcMessageBytes));
  args.SetMaxReceiveMessageSize(static_cast<int>(common::kGrpcMessageBytes));
  channel_ = grpc::CreateCustomChannel(config_.scheduler_address, credentials_, args);
  stub_ = v1::WorkerHub::NewStub(channel_);
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerConfig config,
                                                       engine::Backend& backend, ModelSet& models,
                                                       WorkerMetrics& metrics,
                                                       WorkerGroup* group) {
  auto read = [](const char* field, const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read '", path, "'"));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  std::string token;
  if (!config.scheduler_token_file.empty()) {
    TV_ASSIGN_OR_RETURN(token, read("scheduler_token_file", config.scheduler_token_file));
  } else if (const char* env = std::getenv("TURBOVID_WORKER_TOKEN")) {
    token = env;
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!config.scheduler_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    TV_ASSIGN_OR_RETURN(ssl.pem_root_certs, read("scheduler_ca_file", config.scheduler_ca_file));
    if (config.client_cert_file.empty() != config.client_key_file.empty()) {
      return absl::InvalidArgumentError("client_cert_file and client_key_file: set both or neither");
    }
    if (!config.client_cert_file.empty()) {
      TV_ASSIGN_OR_RETURN(ssl.pem_cert_chain, read("client_cert_file", config.client_cert_file));
      TV_ASSIGN_OR_RETURN(ssl.pem_private_key, read("client_key_file", config.client_key_file));
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (!config.client_cert_file.empty()) {
    return absl::InvalidArgumentError("client_cert_file: needs scheduler_ca_file (TLS)");
  }
  std::unique_ptr<Worker> worker(
      new Worker(std::move(config), backend, models, metrics, group, std::move(token),
                 credentials));
  return worker;
}

Worker::~Worker() {
  RequestStop();
  if (task_thread_.joinable()) task_thread_.join();
}

int64_t Worker::MemoryUsedBytes() const { return DeviceMemoryUsedBytes(backend_); }

int64_t DeviceMemoryUsedBytes(const engine::Backend& backend) {
  return backend.device() == engine::Device::kCpu ? ProcessRssBytes()
                                                  : backend.memory_stats().reserved;
}

DeviceSource MakeDeviceSource(const WorkerConfig& config, const engine::Backend& backend) {
  DeviceSource source;
  source.used_bytes = [&backend] { return DeviceMemoryUsedBytes(backend); };
  source.total_bytes = config.memory_bytes;
  if (backend.device() == engine::Device::kCpu) return source;
  // The bus id finds the same GPU in NVML; NVML's own index is the fallback only when the
  // backend gives none (it ignores CUDA_VISIBLE_DEVICES, so it can name another GPU).
  std::string pci_bus_id;
  if (absl::StatusOr<engine::DeviceInfo> info =
          engine::QueryDevice(config.backend, config.device);
      info.ok()) {
    pci_bus_id = info->pci_bus_id;
    if (info->memory_bytes > 0) source.total_bytes = info->memory_bytes;
  }
  absl::StatusOr<std::unique_ptr<NvmlDevice>> nvml =
      NvmlDevice::Open(kNvmlLibrary, pci_bus_id, config.device);
  if (!nvml.ok()) {
    TV_LOG(WARNING) << nvml.status() << "; GPU utilization, power and temperature are not exported";
    return source;
  }
  TV_LOG(INFO) << "nvml: device "
               << (pci_bus_id.empty() ? absl::StrCat("index ", config.device) : pci_bus_id)
               << " is " << (*nvml)->name();
  source.nvml = std::move(*nvml);
  return source;
}

v1::WorkerMessage Worker::RegisterMessage() const {
  v1::WorkerMessage message;
  v1::RegisterWorker* r = message.mutable_register_();
  r->set_worker_id(config_.worker_id);
  r->set_node_class(config_.node_class);
  r->set_gpu_name(config_.gpu_name);
  r->set_memory_bytes(config_.memory_bytes);
  r->set_memory_limit_bytes(config_.memory_limit_bytes());
  r->set_gpu_count(group_ != nullptr ? group_->size() : config_.gpu_count);
  r->set_tensor_parallel_size(config_.tensor_parallel_size);
  r->set_sequence_parallel_size(config_.sequence_parallel_size);
  for (const v1::ModelVariant& m : models_.Describe()) *r->add_models() = m;
  r->set_max_concurrent_tasks(1);
  return message;
}

int Worker::Run() {
  task_thread_ = std::thread([this] { TaskLoop(); });
  std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(getpid()));
  double backoff = config_.reconnect_initial_seconds;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || drain_done_ || (draining_ && IdleLocked())) break;
    }
    bool registered = false;
    absl::Status status = RunSession(&registered);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || drain_done_ || (draining_ && IdleLocked())) break;
    }
    metrics_.reconnects_total.Get().Increment();
    if (registered) backoff = config_.reconnect_initial_seconds;
    std::uniform_real_distribution<double> jitter(1.0 - config_.reconnect_jitter,
                                                  1.0 + config_.reconnect_jitter);
    const double delay = backoff * jitter(rng);
    if (absl::IsInvalidArgument(status)) {
      // The scheduler refused what this worker said (e.g. a model its catalog does not have):
      // retrying helps only once its catalog or this worker's models change.
      TV_LOG(ERROR) << "scheduler " << config_.scheduler_address
                    << " refused this worker: " << status.message() << "; trying again in " << delay
                    << " s";
    } else {
      TV_LOG(WARNING) << "scheduler " << config_.scheduler_address << ": " << status
                      << "; reconnecting in " << delay << " s";
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::duration<double>(delay),
                 [&] { return stopping_ || drain_done_ || (draining_ && IdleLocked()); });
    backoff = std::min(backoff * 2, config_.reconnect_max_seconds);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  cancel_current_.store(true);
  task_thread_.join();
  if (!live_.load()) return kExitPoisoned;
  if (group_lost_.load()) return kExitGroupLost;
  std::lock_guard<std::mutex> lock(mu_);
  return drain_done_ || draining_ ? kExitDrained : kExitStopped;
}

absl::Status Worker::RunSession(bool* registered) {
  auto session = std::make_shared<Session>();
  session->heartbeat_seconds = config_.heartbeat_seconds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::CancelledError("stopping");
    session_ = session;  // from here on RequestStop can cancel it
  }
  if (!token_.empty()) session->context.AddMetadata("authorization", "Bearer " + token_);
  session->stream = stub_->Connect(&session->context);
  // A failed first write shows up as the end of the read loop below.
  session->Write(RegisterMessage());
  std::thread heartbeat([this, session] { HeartbeatLoop(session); });
  v1::SchedulerMessage message;
  while (session->stream->Read(&message)) {
    switch (message.kind_case()) {
      case v1::SchedulerMessage::kRegistered: {
        const v1::Registered& r = message.registered();
        if (r.heartbeat_interval_seconds() > 0) {
          session->heartbeat_seconds = r.heartbeat_interval_seconds();
        }
        TV_LOG(INFO) << "registered with " << config_.scheduler_address << " as "
                     << r.worker_id() << " (heartbeat " << session->heartbeat_seconds.load()
                     << " s, lease " << r.lease_seconds() << " s)";
        *registered = true;
        session->registered.store(true);
        metrics_.connected.Get().Set(1);
        std::lock_guard<std::mutex> lock(mu_);
        MaybeFinishDrainLocked();
        break;
      }
      case v1::SchedulerMessage::kAssign:
        HandleAssign(session, message.assign());
        break;
      case v1::SchedulerMessage::kCancel:
        HandleCancel(session, message.cancel());
        break;
      case v1::SchedulerMessage::KIND_NOT_SET:
        break;
    }
  }
  session->broken.store(true);
  session->Wake();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (session_ == session) session_.reset();
    // The scheduler requeues what this stream held; an unstarted task is simply dropped.
    if (pending_.has_value() && pending_->session == session) pending_.reset();
    cv_.notify_all();
  }
  metrics_.connected.Get().Set(0);
  heartbeat.join();
  {
    // No Write may be in flight while Finish runs; later writes see `broken` and skip the stream.
    std::lock_guard<std::mutex> lock(session->write_mu);
  }
  grpc::Status finish = session->stream->Finish();
  if (finish.ok()) return absl::UnavailableError("the scheduler closed the stream");
  return absl::Status(static_cast<absl::StatusCode>(finish.error_code()), finish.error_message());
}

void Worker::HeartbeatLoop(std::shared_ptr<Session> session) {
  const absl::Time started = absl::Now();
  const absl::Duration register_timeout = absl::Seconds(config_.register_timeout_seconds);
  absl::Time close_deadline = absl::InfiniteFuture();
  absl::Time next_beat = absl::Now();
  uint64_t models_sent = models_.generation();  // Register carried this generation's list
  while (!session->broken.load()) {
    const bool registered = session->registered.load();
    bool draining;
    {
      std::lock_guard<std::mutex> lock(mu_);
      draining = draining_;
    }
    const absl::Time now = absl::Now();
    if (!registered && now - started > register_timeout) {
      TV_LOG(WARNING) << "no Registered reply within " << register_timeout;
      session->context.TryCancel();
      break;
    }
    if (session->close_requested.load() && close_deadline == absl::InfiniteFuture()) {
      // Drained: half-close and give the scheduler a moment to take the last messages.
      session->CloseWrites();
      close_deadline = now + absl::Seconds(5);
    }
    if (now >= close_deadline) {
      session->context.TryCancel();
      break;
    }
    // A load or eviction is reported at once, not at the next beat: placement follows it.
    const uint64_t models_now = models_.generation();
    if (registered && (now >= next_beat || models_now != models_sent) &&
        !session->close_requested.load()) {
      v1::WorkerMessage beat;
      v1::Heartbeat* h = beat.mutable_heartbeat();
      for (const v1::ModelVariant& m : models_.Describe()) *h->add_models() = m;
      models_sent = models_now;
      h->set_memory_used_bytes(MemoryUsedBytes());
      h->set_memory_peak_bytes(peak_bytes_.load());
      h->set_draining(draining);
      session->Write(beat);
      next_beat = now + absl::Seconds(session->heartbeat_seconds.load());
    }
    std::unique_lock<std::mutex> lock(session->hb_mu);
    session->hb_cv.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void Worker::HandleAssign(const std::shared_ptr<Session>& session, const v1::AssignTask& assign) {
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_ || stopping_) {
      reason = "worker is draining";
    } else if (!IdleLocked()) {
      reason = "worker is busy";
    } else {
      TV_LOG(INFO) << "task " << assign.task_id() << " (attempt " << assign.attempt()
                   << "): " << assign.job().model_id() << ":" << assign.job().variant() << " "
                   << assign.job().width_pixels() << "x" << assign.job().height_pixels()
                   << " frames " << assign.job().num_frames() << " steps "
                   << assign.job().num_steps() << " " << v1::Sampler_Name(assign.job().sampler())
                   << " " << v1::AttentionMode_Name(assign.job().attention());
      pending_ = Pending{assign, session};
      cv_.notify_all();
      return;
    }
  }
  ReturnTask(session, assign, reason);
}

void Worker::HandleCancel(const std::shared_ptr<Session>& session, const v1::CancelTask& cancel) {
  const std::string& task_id = cancel.task_id();
  std::optional<Pending> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_task_id_ == task_id) {
      TV_LOG(INFO) << "task " << task_id << ": cancel requested";
      cancel_current_.store(true);
      return;
    }
    if (pending_.has_value() && pending_->task.task_id() == task_id) {
      dropped = std::move(pending_);
      pending_.reset();
    }
  }
  if (!dropped.has_value()) return;
  v1::WorkerMessage message;
  v1::TaskResult* r = message.mutable_result();
  r->set_task_id(task_id);
  r->set_attempt(dropped->task.attempt());
  r->set_ok(false);
  r->set_cancelled(true);
  r->set_error_code(static_cast<int>(absl::StatusCode::kCancelled));
  r->set_error("cancelled before it started");
  session->Write(message);
  metrics_.tasks_total
      .WithLabels({dropped->task.job().model_id(), dropped->task.job().variant(),
                   config_.node_class, "cancelled"})
      .Increment();
  std::lock_guard<std::mutex> lock(mu_);
  MaybeFinishDrainLocked();
}

void Worker::ReturnTask(const std::shared_ptr<Session>& session, const v1::AssignTask& task,
                        const std::string& reason) {
  TV_LOG(INFO) << "task " << task.task_id() << " returned: " << reason;
  v1::WorkerMessage message;
  message.mutable_returned()->set_task_id(task.task_id());
  message.mutable_returned()->set_reason(reason);
  message.mutable_returned()->set_attempt(task.attempt());
  session->Write(message);
  metrics_.tasks_total
      .WithLabels({task.job().model_id(), task.job().variant(), config_.node_class, "returned"})
      .Increment();
}

void Worker::TaskLoop() {
  while (true) {
    Pending pending;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || pending_.has_value(); });
      if (stopping_) return;
      pending = std::move(*pending_);
      pending_.reset();
      current_task_id_ = pending.task.task_id();
      cancel_current_.store(false);
    }
    metrics_.busy.Get().Set(1);
    RunOne(pending);
    metrics_.busy.Get().Set(0);
    std::lock_guard<std::mutex> lock(mu_);
    current_task_id_.clear();
    MaybeFinishDrainLocked();
    cv_.notify_all();
  }
}

void Worker::RunOne(const Pending& pending) {
  const v1::AssignTask& task = pending.task;
  const std::shared_ptr<Session>& session = pending.session;
  ProgressSink sink = [&](const v1::TaskProgress& progress) {
    v1::WorkerMessage message;
    *message.mutable_progress() = progress;
    message.mutable_progress()->set_attempt(task.attempt());
    session->Write(message);
  };
  // A progressive job's pieces (complete = false) go out as they come, at the file offset reached
  // so far; the complete file then sends only its bytes past them.
  int64_t sent = 0;
  UploadFn upload = [&](const std::string& bytes, bool complete) -> absl::Status {
    const size_t chunk = static_cast<size_t>(config_.result_chunk_bytes);
    const size_t skip =
        complete ? static_cast<size_t>(std::min<int64_t>(sent, static_cast<int64_t>(bytes.size())))
                 : 0;
    for (size_t at = skip; at < bytes.size(); at += chunk) {
      v1::WorkerMessage message;
      v1::ResultChunk* c = message.mutable_chunk();
      c->set_task_id(task.task_id());
      c->set_offset(sent);
      c->set_attempt(task.attempt());
      c->set_data(bytes.substr(at, chunk));
      if (!session->Write(message)) return absl::UnavailableError("scheduler stream lost");
      sent += static_cast<int64_t>(c->data().size());
    }
    return absl::OkStatus();
  };
  auto cancelled = [&] { return cancel_current_.load() || session->broken.load(); };
  const absl::Time start = absl::Now();
  TaskOutcome outcome;
  if (group_ == nullptr) {
    outcome = RunTask(task, models_, sink, cancelled, upload, config_.progress_interval_seconds,
                      metrics_, config_.node_class);
  } else {
    outcome = RunGroupTask(*group_, task, models_, sink, cancelled, upload,
                           config_.progress_interval_seconds, metrics_, config_.node_class);
    if (!outcome.status.ok() && absl::IsUnavailable(outcome.status) && group_->aborted()) {
      GroupLost(std::string(outcome.status.message()));
    }
  }
  peak_bytes_.store(std::max(peak_bytes_.load(), outcome.peak_bytes));
  const std::string& model = task.job().model_id();
  const std::string& variant = task.job().variant();
  if (outcome.peak_bytes > 0) {  // 0: the task stopped before generating
    metrics_.gpu_memory_peak_bytes.Get().Set(static_cast<double>(outcome.peak_bytes));
    metrics_.task_peak_memory_bytes.WithLabels({model, variant})
        .Observe(static_cast<double>(outcome.peak_bytes));
  }
  if (!outcome.mp4.empty()) {
    metrics_.video_bytes.WithLabels({model, variant})
        .Observe(static_cast<double>(outcome.mp4.size()));
  }

  v1::WorkerMessage message;
  v1::TaskResult* r = message.mutable_result();
  r->set_task_id(task.task_id());
  r->set_attempt(task.attempt());
  r->set_ok(outcome.status.ok());
  r->set_cancelled(absl::IsCancelled(outcome.status));
  r->set_error_code(static_cast<int>(outcome.status.code()));
  r->set_error(std::string(outcome.status.message()).substr(0, 1024));
  r->set_video_bytes(outcome.status.ok() ? static_cast<int64_t>(outcome.mp4.size()) : 0);
  r->set_peak_memory_bytes(outcome.peak_bytes);
  r->set_run_seconds(absl::ToDoubleSeconds(absl::Now() - start));
  r->set_mp4_encoder(outcome.mp4_encoder);
  r->set_mp4_tail_seconds(outcome.mp4_tail_seconds);
  const bool delivered = session->Write(message);

  std::string result = outcome.status.ok()                   ? "succeeded"
                       : absl::IsCancelled(outcome.status) ? "cancelled"
                                                             : "failed";
  if (!delivered) result = "lost";  // the stream broke: the scheduler requeues the task
  metrics_.tasks_total.WithLabels({model, variant, config_.node_class, result}).Increment();
  const double task_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  metrics_.task_cost_total.WithLabels({model, variant, config_.node_class})
      .Increment(task_seconds * config_.price_per_hour / 3600.0);
  TV_LOG(INFO) << "task " << task.task_id() << " " << result << " in "
               << absl::ToDoubleSeconds(absl::Now() - start) << " s"
               << (outcome.status.ok() ? absl::StrCat(" (", outcome.mp4.size(), " bytes)")
                                       : absl::StrCat(": ", outcome.status.ToString()));
  if (group_lost_.load()) {
    // The result is out (the scheduler requeues the task); the group cannot run another.
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (session_) session_->context.TryCancel();
    cv_.notify_all();
    return;
  }
  if (absl::IsInternal(outcome.status) && config_.backend != "cpu") {
    // A sticky device error leaves the context unusable: stop serving, let the
    // supervisor restart the process (docs/design.md §8).
    TV_LOG(ERROR) << "backend poisoned by " << outcome.status << "; exiting";
    live_.store(false);
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (session_) session_->context.TryCancel();
    cv_.notify_all();
  }
}

void Worker::MaybeFinishDrainLocked() {
  if (!draining_) return;
  if (pending_.has_value()) {
    // Assigned but not started: give it back before leaving.
    Pending p = std::move(*pending_);
    pending_.reset();
    ReturnTask(p.session, p.task, "worker is draining");
  }
  if (!IdleLocked()) return;
  drain_done_ = true;
  if (session_) {
    session_->close_requested.store(true);
    session_->Wake();
  }
  cv_.notify_all();
}

void Worker::RequestDrain() {
  std::shared_ptr<Session> session;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) return;
    draining_ = true;
    TV_LOG(INFO) << "draining: " << (current_task_id_.empty() ? "idle" : "finishing task " + current_task_id_);
    session = session_;
    MaybeFinishDrainLocked();
    cv_.notify_all();
  }
  if (session) {
    // Tell the scheduler right away so it assigns nothing new.
    v1::WorkerMessage beat;
    beat.mutable_heartbeat()->set_draining(true);
    beat.mutable_heartbeat()->set_memory_used_bytes(MemoryUsedBytes());
    beat.mutable_heartbeat()->set_memory_peak_bytes(peak_bytes_.load());
    session->Write(beat);
  }
}

void Worker::GroupLost(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (group_lost_.exchange(true)) return;
  TV_LOG(ERROR) << "worker group lost: " << why << "; exiting with code " << kExitGroupLost;
  group_lost_why_ = why;
  stopping_ = true;
  // A running task fails in its next collective (the group's communicators are aborted) and is
  // reported lost by RunOne before the session closes; an idle worker leaves now.
  if (current_task_id_.empty() && session_) session_->context.TryCancel();
  cv_.notify_all();
}

void Worker::RequestStop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  cancel_current_.store(true);
  if (session_) session_->context.TryCancel();
  cv_.notify_all();
}

}  // namespace turbovid::worker
