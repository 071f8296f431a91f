// Progressive output (SubmitVideoRequest.progressive, docs/api.md): a progressive job's worker
// uploads a fragmented MP4 while it decodes; the scheduler relays it to GetVideo and HTTP readers
// fragment by fragment. A worker's bytes are untrusted: only whole top-level boxes ending in an
// mdat are relayed, and (with check_worker_results) each batch is parsed against the job before
// any reader sees it, as the result check does for a whole file (docs/security.md).
#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "engine/video/mp4_probe.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_internal.h"

namespace turbovid::scheduler {
namespace {

uint64_t BigEndian(const std::string& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(b[at + i]);
  return v;
}

// The end of the last whole mdat box among the whole top-level boxes at the front of `bytes`
// (0: none yet), and where the first moof starts (npos: none among them).
size_t WholeFragments(const std::string& bytes, size_t* first_moof) {
  *first_moof = std::string::npos;
  size_t at = 0, end = 0;
  while (bytes.size() - at >= 8) {
    const size_t left = bytes.size() - at;
    uint64_t size = BigEndian(bytes, at, 4);
    uint64_t header = 8;
    if (size == 1) {
      if (left < 16) break;
      size = BigEndian(bytes, at + 8, 8);
      header = 16;
    }
    // 0 ("to the end of the file") is whole only at the end: left to the final result check.
    if (size < header || size > left) break;
    const std::string type = bytes.substr(at + 4, 4);
    if (type == "moof" && *first_moof == std::string::npos) *first_moof = at;
    at += size;
    if (type == "mdat") end = at;
  }
  return end;
}

}  // namespace

std::shared_ptr<server::LiveVideo> Scheduler::LiveOfLocked(ActiveJob& job) {
  if (job.live == nullptr) job.live = std::make_shared<server::LiveVideo>();
  return job.live;
}

bool Scheduler::StreamChunkLocked(Worker& worker, ActiveJob& job, const std::string& data) {
  const std::string who = absl::StrCat("worker ", worker.info.worker_id(), ": ");
  const int64_t frames = job.stored.job.num_frames();
  const int64_t width = job.stored.width_pixels, height = job.stored.height_pixels;
  // As the whole-file check: never more than twice the job's raw frames. Checked whatever
  // check_worker_results says: these bytes are held in memory.
  const int64_t max_bytes = int64_t{3} * frames * width * height + (int64_t{1} << 20);
  std::string reason;
  absl::Status bad;
  if (job.stream_bytes + static_cast<int64_t>(job.stream_tail.size() + data.size()) > max_bytes) {
    reason = "oversized";
    bad = absl::FailedPreconditionError(absl::StrCat(who, "streamed video passes ", max_bytes,
                                                     " bytes (twice the job's raw frames)"));
    return RejectStreamLocked(worker, job, bad, reason);
  }
  job.stream_tail += data;
  size_t first_moof = std::string::npos;
  const size_t end = WholeFragments(job.stream_tail, &first_moof);
  if (end == 0) return true;
  std::string piece = job.stream_tail.substr(0, end);
  if (config_.check_worker_results) {
    const bool first = job.stream_bytes == 0;
    // Later fragments are parsed behind the init segment: their offsets are moof-relative.
    absl::StatusOr<engine::video::Mp4Info> info =
        engine::video::ProbeMp4(first ? piece : job.stream_init + piece);
    if (!info.ok()) {
      reason = "unparseable";
      bad = absl::FailedPreconditionError(
          absl::StrCat(who, "streamed video is not a valid MP4 (", info.status().message(), ")"));
    } else if (info->width != width || info->height != height) {
      reason = "size";
      bad = absl::FailedPreconditionError(absl::StrCat(who, "streamed video is ", info->width, "x",
                                                       info->height, ", the job renders at ", width,
                                                       "x", height));
    } else if (!info->fragmented && !(first && info->frames == frames)) {
      // Unfragmented only as one whole file (a worker without libx264).
      reason = "unparseable";
      bad = absl::FailedPreconditionError(
          absl::StrCat(who, "streamed video is neither fragmented nor the whole file"));
    } else if (job.stream_frames + info->frames > frames) {
      reason = "frames";
      bad = absl::FailedPreconditionError(
          absl::StrCat(who, "streamed video has ", job.stream_frames + info->frames,
                       " frames so far, the job asked for ", frames));
    } else {
      job.stream_frames += info->frames;
      if (first && info->fragmented) job.stream_init = piece.substr(0, first_moof);
    }
    if (!bad.ok()) return RejectStreamLocked(worker, job, bad, reason);
  }
  if (job.stream_bytes == 0 && job.denoise_done_steady > 0) {
    metrics_->progressive_first_bytes.WithLabels({job.placement.model_id, worker.info.node_class()})
        .Observe(std::max(0.0, SteadyNow() - job.denoise_done_steady));
  }
  job.stream_tail.erase(0, end);
  job.stream_bytes += static_cast<int64_t>(piece.size());
  LiveOfLocked(job)->Append(piece);
  return true;
}

bool Scheduler::RejectStreamLocked(Worker& worker, ActiveJob& job, const absl::Status& check,
                                   const std::string& reason) {
  v1::SchedulerMessage cancel;
  cancel.mutable_cancel()->set_task_id(job.stored.job_id);
  cancel.mutable_cancel()->set_attempt(job.stored.attempts);
  worker.link->Send(cancel);
  RejectResultLocked(job, check, reason);
  return false;
}

void Scheduler::EndStreamLocked(ActiveJob& job, const absl::Status& status) {
  if (job.live != nullptr) {
    // Succeeded: the upload passed the whole-file check; what was not relayed yet goes now.
    if (status.ok()) job.live->Append(job.stream_tail);
    job.live->End(status);
  }
  job.live.reset();
  job.stream_tail.clear();
  job.stream_init.clear();
  job.stream_bytes = 0;
  job.stream_frames = 0;
}

}  // namespace turbovid::scheduler
