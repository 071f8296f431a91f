// Every size limit of the service in one place: admission caps, per-message bounds and the gRPC
// channel caps of the scheduler, worker and clients, with the inequalities between them checked
// here.
#pragma once

#include <cstdint>

namespace turbovid::common {

// Admission: the largest request fields a job may carry (the scheduler's config may lower them).
inline constexpr int64_t kMaxImageBytes = 10 << 20;  // encoded I2V image
inline constexpr int64_t kMaxPromptBytes = 4096;     // prompt and negative_prompt, each
inline constexpr int64_t kMaxClientRequestIdBytes = 128;
inline constexpr int64_t kMaxJobIdBytes = 128;
inline constexpr int64_t kMaxWorkerIdBytes = 128;  // RegisterWorker.worker_id

// Everything in a message besides its image and prompts (ids, sizes, seeds, proto framing).
inline constexpr int64_t kMessageSlackBytes = 1 << 20;

// SubmitVideoRequest and AssignTask both carry the image and both prompts.
inline constexpr int64_t kMaxRequestBytes =
    kMaxImageBytes + 2 * kMaxPromptBytes + kMessageSlackBytes;
inline constexpr int64_t kMaxAssignTaskBytes = kMaxRequestBytes;

// Worker -> scheduler ResultChunk payload and scheduler -> client GetVideo chunk.
inline constexpr int64_t kResultChunkBytes = 1 << 20;
inline constexpr int64_t kMinResultChunkBytes = 1024;
inline constexpr int64_t kVideoChunkBytes = 1 << 20;
// A denoising step's preview PNG (at most 512 pixels wide): larger ones are dropped, not sent.
inline constexpr int64_t kPreviewPngBytes = 1 << 20;
// One finished MP4 uploaded by a worker; a longer upload fails the job.
inline constexpr int64_t kMaxUploadBytes = int64_t{4} << 30;

// Send and receive cap of every gRPC channel: the scheduler's server (its config default), the
// worker's channel, the CLI and tests/e2e/tv_client.py (which repeats the number: Python).
inline constexpr int64_t kGrpcMessageBytes = 64 << 20;
// HTTP gateway bodies: a JSON SubmitVideoRequest carries the image base64 encoded (4/3).
inline constexpr int64_t kMaxHttpBodyBytes = 16 << 20;

static_assert(kMaxRequestBytes < kGrpcMessageBytes, "an admitted request must fit every channel");
static_assert(kMaxAssignTaskBytes < kGrpcMessageBytes, "AssignTask must fit the worker channel");
static_assert(kResultChunkBytes + kMessageSlackBytes < kGrpcMessageBytes);
static_assert(kVideoChunkBytes + kMessageSlackBytes < kGrpcMessageBytes);
static_assert((kMaxRequestBytes + 2) / 3 * 4 < kMaxHttpBodyBytes,
              "a base64 JSON request of admitted size must fit the HTTP gateway");
static_assert(kMinResultChunkBytes <= kResultChunkBytes);
static_assert(kPreviewPngBytes + kMessageSlackBytes < kGrpcMessageBytes);

}  // namespace turbovid::common
