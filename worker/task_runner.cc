// Request mapping, the model lease and the progress tracker around engine::Pipeline::Generate.
#include "worker/task_runner.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/limits.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace turbovid::worker {
namespace {

v1::Stage ToProtoStage(engine::Stage stage) {
  switch (stage) {
    case engine::Stage::kLoadingModel:
      return v1::STAGE_LOADING_MODEL;
    case engine::Stage::kEncodingText:
      return v1::STAGE_ENCODING_TEXT;
    case engine::Stage::kEncodingImage:
      return v1::STAGE_ENCODING_IMAGE;
    case engine::Stage::kDenoising:
      return v1::STAGE_DENOISING;
    case engine::Stage::kDecodingVideo:
      return v1::STAGE_DECODING_VIDEO;
    case engine::Stage::kEncodingMp4:
      return v1::STAGE_ENCODING_MP4;
  }
  return v1::STAGE_UNSPECIFIED;
}

// Turns the engine's progress callbacks into TaskProgress messages and stage/step metrics.
class ProgressTracker {
 public:
  // `labels`: model, variant, node_class, resolution of the stage and step histograms.
  ProgressTracker(const std::string& task_id, const ProgressSink& sink, double interval_seconds,
                  WorkerMetrics& metrics, std::vector<std::string> labels)
      : task_id_(task_id),
        sink_(sink),
        interval_(absl::Seconds(interval_seconds)),
        metrics_(metrics),
        labels_(std::move(labels)) {}

  void OnProgress(const engine::Progress& p) {
    const absl::Time now = absl::Now();
    const v1::Stage stage = ToProtoStage(p.stage);
    double step_seconds = 0;
    bool emit = false;
    if (stage != stage_) {
      EndStage(now);
      stage_ = stage;
      stage_start_ = now;
      step_ = 0;
      last_step_time_ = now;
      emit = true;
    }
    if (stage == v1::STAGE_DENOISING && p.step != step_ && p.step > 0) {
      step_seconds = absl::ToDoubleSeconds(now - last_step_time_);
      metrics_.denoise_step_seconds.WithLabels(labels_).Observe(step_seconds);
      last_step_time_ = now;
      step_ = p.step;
      emit = true;
    }
    if (!emit && now - last_emit_ < interval_) return;
    v1::TaskProgress msg;
    msg.set_task_id(task_id_);
    msg.set_stage(stage);
    msg.set_step(stage == v1::STAGE_DENOISING ? p.step : 0);
    msg.set_num_steps(p.num_steps);
    msg.set_stage_fraction(p.fraction);
    msg.set_step_seconds(step_seconds);
    if (stage == v1::STAGE_DENOISING && !p.preview_png.empty() &&
        static_cast<int64_t>(p.preview_png.size()) <= common::kPreviewPngBytes) {
      msg.set_preview_png(p.preview_png);
    }
    last_emit_ = now;
    sink_(msg);
  }

  // Enters a stage the engine does not report (UPLOADING).
  void Enter(v1::Stage stage, int num_steps) {
    const absl::Time now = absl::Now();
    EndStage(now);
    stage_ = stage;
    stage_start_ = now;
    v1::TaskProgress msg;
    msg.set_task_id(task_id_);
    msg.set_stage(stage);
    msg.set_num_steps(num_steps);
    last_emit_ = now;
    sink_(msg);
  }

  void EndStage(absl::Time now) {
    if (stage_ == v1::STAGE_UNSPECIFIED) return;
    std::vector<std::string> labels = labels_;
    labels.push_back(StageLabel(stage_));
    metrics_.stage_duration_seconds.WithLabels(labels).Observe(
        absl::ToDoubleSeconds(now - stage_start_));
    stage_ = v1::STAGE_UNSPECIFIED;
  }

 private:
  std::string task_id_;
  const ProgressSink& sink_;
  absl::Duration interval_;
  WorkerMetrics& metrics_;
  std::vector<std::string> labels_;
  v1::Stage stage_ = v1::STAGE_UNSPECIFIED;
  absl::Time stage_start_;
  absl::Time last_step_time_;
  absl::Time last_emit_ = absl::InfinitePast();
  int step_ = 0;
};

}  // namespace

absl::StatusOr<engine::GenerateRequest> ToGenerateRequest(const v1::ResolvedJob& job,
                                                          const std::string& image) {
  engine::GenerateRequest g;
  switch (job.sampler()) {
    case v1::SAMPLER_RCM:
      g.sampler = engine::SamplerKind::kRcm;
      break;
    case v1::SAMPLER_UNIPC:
      g.sampler = engine::SamplerKind::kUniPc;
      break;
    default:  // UNSPECIFIED, or a value this worker does not know (open proto3 enum)
      return absl::InvalidArgumentError(
          absl::StrCat("job.sampler: ", job.sampler(), " is not RCM or UNIPC"));
  }
  switch (job.attention()) {
    case v1::ATTENTION_MODE_DENSE:
      g.attention = engine::AttentionMode::kDense;
      break;
    case v1::ATTENTION_MODE_SLA:
      g.attention = engine::AttentionMode::kSla;
      break;
    case v1::ATTENTION_MODE_SAGESLA:
      g.attention = engine::AttentionMode::kSageSla;
      g.sagesla_native = true;  // this GPU's upstream build (Backend::native_sagesla)
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("job.attention: ", job.attention(), " is not DENSE, SLA or SAGESLA"));
  }
  if (job.num_steps() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("job.num_steps: ", job.num_steps()));
  }
  if (job.num_frames() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("job.num_frames: ", job.num_frames()));
  }
  if (job.width_pixels() < 1 || job.height_pixels() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "job.width_pixels/height_pixels: ", job.width_pixels(), "x", job.height_pixels()));
  }
  g.prompt = job.prompt();
  g.negative_prompt = job.negative_prompt();
  g.image_bytes = image;
  g.frames = job.num_frames();
  g.width = job.width_pixels();
  g.height = job.height_pixels();
  // The scheduler resolved the I2V size from the image's aspect at admission (docs/design.md
  // §5.2): render exactly what the job reports.
  g.adapt_size_to_image = false;
  g.steps = job.num_steps();
  g.seed = job.seed();
  g.sla_topk = job.sla_topk();
  g.preview_width = job.preview_width();
  g.fragmented_mp4 = job.progressive();
  g.return_frames = false;  // the MP4 alone: only its I420 pictures leave the device
  return g;
}

namespace {

// The request mapped, its model leased and the request checked against it: everything a task
// can fail on before the pipeline starts.
absl::Status Prepare(const v1::AssignTask& task, ModelSet& models, ProgressTracker& tracker,
                     engine::GenerateRequest* request, ModelLease* lease) {
  const v1::ResolvedJob& job = task.job();
  if (job.variant().empty()) return absl::InvalidArgumentError("job.variant: empty");
  TV_ASSIGN_OR_RETURN(*request, ToGenerateRequest(job, task.image()));
  // Held until the task ends, so that no other load evicts the model under it.
  TV_ASSIGN_OR_RETURN(*lease, models.Acquire(job.model_id(), job.variant(), [&] {
    tracker.Enter(v1::STAGE_LOADING_MODEL, request->steps);
  }));
  if (lease->pipeline()->is_i2v() && request->image_bytes.empty()) {
    return absl::InvalidArgumentError("image: required by an I2V model");
  }
  // Admission: validation and the memory plan under the worker's budget (a job that cannot fit
  // is refused here with its need and the budget, docs/memory.md).
  return lease->pipeline()->PlanMemory(*request).status();
}

}  // namespace

TaskOutcome RunTask(const v1::AssignTask& task, ModelSet& models, const ProgressSink& sink,
                    const std::function<bool()>& cancelled, const UploadFn& upload,
                    double progress_interval_seconds, WorkerMetrics& metrics,
                    const std::string& node_class, const AgreeFn& agree) {
  TaskOutcome outcome;
  const v1::ResolvedJob& job = task.job();
  ProgressTracker tracker(task.task_id(), sink, progress_interval_seconds, metrics,
                          {job.model_id(), job.variant(), node_class,
                           common::metrics::ResolutionLabel(job.width_pixels(),
                                                            job.height_pixels())});
  engine::GenerateRequest request;
  ModelLease lease;
  absl::Status ready = Prepare(task, models, tracker, &request, &lease);
  // A group runs the pipeline on all ranks or on none.
  if (agree) ready = agree(ready);
  if (!ready.ok()) {
    tracker.EndStage(absl::Now());
    outcome.status = ready;
    return outcome;
  }
  engine::Pipeline* pipeline = lease.pipeline();
  engine::ProgressFn progress = [&](const engine::Progress& p) { tracker.OnProgress(p); };
  engine::CancelFn cancel = [&] { return cancelled(); };
  // Progressive: each fragment goes to the scheduler as the encoder thread hands it out. A failed
  // send means the stream broke, which `cancelled` reports at the next check.
  if (request.fragmented_mp4) {
    request.on_mp4_bytes = [&](const std::string& bytes) { (void)upload(bytes, false); };
  }
  outcome.ran_pipeline = true;
  absl::StatusOr<engine::GenerateResult> result =
      pipeline->Generate(request, progress, cancel, /*encode_mp4=*/true);
  outcome.pipeline_status = result.status();
  if (!result.ok()) {
    tracker.EndStage(absl::Now());
    outcome.status = result.status();
    return outcome;
  }
  outcome.mp4 = std::move(result->mp4);
  outcome.peak_bytes = result->peak_bytes;
  outcome.mp4_encoder = result->mp4_encoder;
  outcome.mp4_tail_seconds = result->mp4_tail_seconds;
  tracker.Enter(v1::STAGE_UPLOADING, request.steps);
  outcome.status = upload(outcome.mp4, true);
  tracker.EndStage(absl::Now());
  return outcome;
}

int64_t ProcessRssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace turbovid::worker
