// Runs one AssignTask on the engine: its model from the ModelSet (loaded first when cold), the
// proto → engine request mapping, and progress reporting per stage and per denoising step.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "engine/pipeline/pipeline.h"
#include "turbovid/v1/worker_hub.pb.h"
#include "worker/metrics.h"
#include "worker/model_set.h"
#include "worker/worker_config.h"

namespace turbovid::worker {

namespace v1 = ::turbovid::v1;

// Fills gpu_name / memory_bytes (when unset) from the configured device (device_info.cc).
absl::Status FillDeviceInfo(WorkerConfig* config);

// Copies the scheduler's resolved job field by field into the engine's request (UNIPC runs with
// classifier-free guidance); `image` is the task's conditioning image. Nothing is derived here:
// a field left UNSPECIFIED or out of range is InvalidArgument naming it (`job.sampler: ...`).
absl::StatusOr<engine::GenerateRequest> ToGenerateRequest(const v1::ResolvedJob& job,
                                                          const std::string& image);

struct TaskOutcome {
  absl::Status status;  // Cancelled when stopped by the cancel check
  std::string mp4;
  int64_t peak_bytes = 0;
  std::string mp4_encoder;  // GenerateResult::mp4_encoder
  double mp4_tail_seconds = 0;
  // The pipeline started (its collectives, in a worker group), and how it ended (the upload
  // after it is the leader's alone). A failure before it is one every rank agreed on; a
  // pipeline failure other than Cancelled may be this rank's alone.
  bool ran_pipeline = false;
  absl::Status pipeline_status;
};

// In a worker group: every rank's status before the pipeline starts (model leased, request
// validated) → the one all ranks act on (WorkerGroup::Agree).
using AgreeFn = std::function<absl::Status(const absl::Status& mine)>;

using ProgressSink = std::function<void(const v1::TaskProgress&)>;
// Sends the MP4 to the scheduler. `complete` true: the finished file (inside the UPLOADING
// stage); false: a piece of a progressive job's file, in order, while the pipeline still runs
// (on the engine's encoder thread). The pieces of a progressive job are the file's first bytes,
// so the final call sends only what they did not.
using UploadFn = std::function<absl::Status(const std::string& bytes, bool complete)>;

// Runs the task to completion (or cancellation) on the calling thread. A cold model is loaded
// first (stage LOADING_MODEL) and stays loaded. Progress goes to `sink` on every stage change and
// denoising step, and in-stage fraction updates at most every `progress_interval_seconds`.
// `cancelled` is polled between denoising steps. On success the MP4 goes to `upload`, whose
// status becomes the outcome's. Stage and step times go to `metrics`, labelled with the job's
// model and variant and this worker's `node_class`.
// In a worker group every rank runs it with `agree` (collective) and the same task; progress,
// cancellation and the upload matter on the leader only (the others pass no-ops).
TaskOutcome RunTask(const v1::AssignTask& task, ModelSet& models, const ProgressSink& sink,
                    const std::function<bool()>& cancelled, const UploadFn& upload,
                    double progress_interval_seconds, WorkerMetrics& metrics,
                    const std::string& node_class, const AgreeFn& agree = nullptr);

// Resident set size of this process (the CPU backend's "memory in use").
int64_t ProcessRssBytes();

}  // namespace turbovid::worker
