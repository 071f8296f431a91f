// An OpenAI-compatible videos API over the VideoBackend, beside the native one (docs/api.md):
//   POST   /v1/videos               create (JSON, or multipart/form-data with input_reference)
//   GET    /v1/videos               list: data, first_id, last_id, has_more; after, limit, order
//   GET    /v1/videos/ID            retrieve
//   DELETE /v1/videos/ID            delete (an unfinished job is cancelled first)
//   GET    /v1/videos/ID/content    the MP4 (variant=video only; byte ranges)
// Jobs appear as OpenAI video objects; errors as {"error": {message, type, param, code}}.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/http_server.h"
#include "server/backend.h"

namespace turbovid::server {

// Frames per second of every catalog model's output (Wan2.1 / Wan2.2: docs/model-math.md §6.1):
// `seconds` s is 16·s + 1 frames (4k+1), and N frames are reported as (N − 1) / 16 seconds.
inline constexpr int kOpenAiFps = 16;

// OpenAI `seconds` ("4", "0.25", 8) -> num_frames; InvalidArgument naming `seconds`.
absl::StatusOr<int> SecondsToFrames(const std::string& seconds);
// num_frames -> the `seconds` string of a video object ("5" for 81 frames, "0.25" for 5).
std::string FramesToSeconds(int num_frames);

// Registers the handlers; `backend` must outlive `http`'s serving.
void InstallOpenAiGateway(common::HttpServer* http, VideoBackend* backend);

}  // namespace turbovid::server
