// HTTP/JSON gateway to the VideoBackend on common::HttpServer (proto3 JSON mapping):
//   POST /v1/videos                 body SubmitVideoRequest -> Job
//   GET  /v1/videos?job_id=ID       -> Job;   GET /v1/videos -> ListJobsResponse (newest first)
//   POST /v1/videos:cancel?job_id=ID -> Job
//   GET  /v1/videos:content?job_id=ID -> the MP4 (video/mp4)
// Errors answer {"code": "INVALID_ARGUMENT", "message": "..."} with the matching HTTP status.
#pragma once

#include "common/http_server.h"
#include "server/backend.h"

namespace turbovid::server {

// Registers the handlers; `backend` must outlive `http`'s serving.
void InstallHttpGateway(common::HttpServer* http, VideoBackend* backend);

}  // namespace turbovid::server
