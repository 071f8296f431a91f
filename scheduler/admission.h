// Edge validation of SubmitVideoRequest against the catalog and the admission limits. A bad
// request gets InvalidArgument naming the field (`num_frames: 80 is not 4k+1`); nothing changes.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "scheduler/config.h"
#include "scheduler/model_catalog.h"
#include "turbovid/v1/video_service.pb.h"
#include "turbovid/v1/worker_hub.pb.h"

namespace turbovid::scheduler {

// What a valid request resolves to (defaults filled in).
struct ResolvedRequest {
  const ModelSpec* model = nullptr;
  const VariantSpec* variant = nullptr;
  int width_pixels = 0;
  int height_pixels = 0;
  int num_frames = 0;
  int num_steps = 0;
  uint64_t seed = 0;
  turbovid::v1::AttentionMode attention = turbovid::v1::ATTENTION_MODE_UNSPECIFIED;
  // What the worker renders (ResolveJob of the accepted request): every field above plus the
  // variant's sampler and sla_topk and the prompts. Stored with the job, sent with every attempt.
  turbovid::v1::ResolvedJob job;
};

// `random_seed` is used when the request asks for one. Checks every field but the queue length.
absl::StatusOr<ResolvedRequest> ValidateSubmit(const turbovid::v1::SubmitVideoRequest& request,
                                               const ModelCatalog& catalog,
                                               const AdmissionLimits& limits, uint64_t random_seed);

// The output size of a request that names none (before an I2V image adapts it).
absl::Status DefaultSize(const ModelSpec& model, int* width, int* height);

// Checks that a resolved job names every parameter (nothing UNSPECIFIED, sizes and counts in
// range); InvalidArgument naming the field (`job.sampler: SAMPLER_UNSPECIFIED`). Admission runs it
// on what it resolved, recovery on what the store gives back.
absl::Status CheckResolvedJob(const turbovid::v1::ResolvedJob& job);

// The request as stored and shown in Job.request: defaults resolved, image bytes stripped.
turbovid::v1::SubmitVideoRequest AcceptedRequest(const turbovid::v1::SubmitVideoRequest& request,
                                                 const ResolvedRequest& resolved);

// The job the worker renders, from an accepted request (AcceptedRequest: every request default
// filled in) and its catalog variant, which adds the sampler and sla_topk. Also rebuilds the job
// of a row stored before jobs carried one. Runs CheckResolvedJob.
absl::StatusOr<turbovid::v1::ResolvedJob> ResolveJob(
    const turbovid::v1::SubmitVideoRequest& accepted, const VariantSpec& variant);

}  // namespace turbovid::scheduler
