// Pieces shared by the HTTP front ends (native JSON gateway, OpenAI-compatible API, web page):
// status -> HTTP code, query strings, path segments, proto <-> JSON, and the MP4 response with
// byte ranges.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/http_server.h"
#include "google/protobuf/message.h"
#include "server/backend.h"

namespace turbovid::server {

inline constexpr char kJsonType[] = "application/json";

// The HTTP status of a canonical code (google.rpc's mapping, as grpc-gateway uses it).
int HttpStatusOf(absl::StatusCode code);
// A 429 answer's Retry-After, in whole seconds: the wait the refusal names ("... retry after
// 2.40 s", as the tenant quotas word it), rounded up, else 1. Other statuses get none (0).
int RetryAfterSeconds(const absl::Status& status);
// Adds the Retry-After header to `response` where RetryAfterSeconds gives one.
void AddRetryAfter(const absl::Status& status, common::HttpResponse* response);

// Decoded query parameters (percent escapes and '+'); InvalidArgument on a bad escape.
absl::StatusOr<std::map<std::string, std::string>> ParseQuery(const std::string& query);

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(const std::string& text);

// Proto3 JSON of `message` with the proto field names.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// InvalidArgument unless the request's method is `method`.
absl::Status NeedMethod(const common::HttpRequest& request, const char* method);

// The MP4 of a SUCCEEDED job, streamed in 1 MiB reads: 200 with the whole file, or 206 for a
// single `Range: bytes=...` (416 when it cannot be satisfied). `on_error` renders a failure in the
// front end's own error shape.
using ErrorRenderer = std::function<common::HttpResponse(const absl::Status&)>;
common::HttpResponse VideoResponse(VideoBackend* backend, const std::string& job_id,
                                   const common::HttpRequest& request,
                                   const ErrorRenderer& on_error);

}  // namespace turbovid::server
