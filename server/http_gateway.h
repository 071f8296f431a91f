// The native HTTP/JSON gateway to the VideoBackend (proto3 JSON mapping, proto field names), under
// its own prefix so that /v1/videos stays OpenAI's (server/openai_gateway.h); docs/api.md:
//   POST   /turbovid/v1/jobs                  body SubmitVideoRequest -> Job
//   GET    /turbovid/v1/jobs?state=&model_id=&page_size=&page_token=&oldest_first=&after_job_id=
//                                             -> ListJobsResponse (newest first by default)
//   GET    /turbovid/v1/jobs/ID               -> Job
//   DELETE /turbovid/v1/jobs/ID               -> DeleteJobResponse
//   POST   /turbovid/v1/jobs/ID:cancel        -> Job
//   GET    /turbovid/v1/jobs/ID/video         -> the MP4 (video/mp4, byte ranges)
//   GET    /turbovid/v1/jobs/ID/events        -> server-sent events, one `job` event per change
//   GET    /turbovid/v1/models                -> ListModelsResponse
//   GET    /turbovid/v1/workers               -> ListWorkersResponse
//   GET    /turbovid/v1/fleet                 -> GetFleetResponse (FleetService.GetFleet; 404
//                                                when installed without a FleetBackend)
// Errors answer {"code": "INVALID_ARGUMENT", "message": "..."} with the matching HTTP status.
#pragma once

#include "common/http_server.h"
#include "server/backend.h"

namespace turbovid::server {

inline constexpr char kNativePrefix[] = "/turbovid/v1/";

struct GatewayOptions {
  int max_event_streams = 32;  // concurrent /events streams; more get 503 (each holds a thread)
  double event_keepalive_seconds = 15;  // comment lines sent while a job is quiet
};

// Registers the handlers; `backend` and `fleet` (may be null: no fleet route) must outlive
// `http`'s serving.
void InstallHttpGateway(common::HttpServer* http, VideoBackend* backend,
                        const GatewayOptions& options = {}, FleetBackend* fleet = nullptr);

}  // namespace turbovid::server
