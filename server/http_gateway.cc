// Native gateway: JSON <-> proto with protobuf's json_util; one prefix handler dispatches on the
// path. The events stream is a backend watch whose listener only queues snapshots (it runs under
// the backend's lock); the connection's thread writes them.
#include "server/http_gateway.h"

#include <google/protobuf/util/json_util.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "server/http_util.h"
#include "server/status.h"

namespace turbovid::server {
namespace {

common::HttpResponse Error(const absl::Status& status) {
  const grpc::Status cut = ToGrpcStatus(status);  // the same 1 KiB cut as gRPC answers
  common::HttpResponse response{
      HttpStatusOf(status.code()), kJsonType,
      absl::StrCat("{\"code\": ", JsonQuote(absl::StatusCodeToString(status.code())),
                   ", \"message\": ", JsonQuote(cut.error_message()), "}\n")};
  AddRetryAfter(status, &response);
  return response;
}

template <typename Message>
common::HttpResponse Json(const absl::StatusOr<Message>& message) {
  if (!message.ok()) return Error(message.status());
  absl::StatusOr<std::string> json = ToJson(*message);
  if (!json.ok()) return Error(json.status());
  return {200, kJsonType, *json + "\n"};
}

bool IsFinal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

absl::Status CheckJobId(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id: empty");
  if (static_cast<int64_t>(job_id.size()) > common::kMaxJobIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_id: ", job_id.size(), " bytes > ", common::kMaxJobIdBytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ListJobsRequest> ListRequest(const std::string& query) {
  absl::StatusOr<std::map<std::string, std::string>> params = ParseQuery(query);
  if (!params.ok()) return params.status();
  v1::ListJobsRequest list;
  for (const auto& [key, value] : *params) {
    if (key == "state") {
      v1::JobState state;
      if (!v1::JobState_Parse(value, &state)) {
        return absl::InvalidArgumentError(absl::StrCat("state: unknown '", value, "'"));
      }
      list.set_state(state);
    } else if (key == "model_id") {
      list.set_model_id(value);
    } else if (key == "page_size") {
      int size = 0;
      if (!absl::SimpleAtoi(value, &size) || size < 0 || size > 1000) {
        return absl::InvalidArgumentError(
            absl::StrCat("page_size: '", value, "' not in [0, 1000]"));
      }
      list.set_page_size(size);
    } else if (key == "page_token") {
      list.set_page_token(value);
    } else if (key == "oldest_first") {
      list.set_oldest_first(value == "true" || value == "1");
    } else if (key == "after_job_id") {
      list.set_after_job_id(value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("query: unknown parameter '", key, "'"));
    }
  }
  return list;
}

// Job snapshots queued by a watch listener for the connection's thread.
struct EventQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<v1::Job> jobs;
  bool ended = false;
  absl::Status end_status;
};

constexpr size_t kMaxQueuedEvents = 64;  // a slow client loses intermediate snapshots

void StreamEvents(VideoBackend* backend, const std::string& job_id, const std::string& client,
                  double keepalive_seconds, common::HttpBodyWriter& writer) {
  auto queue = std::make_shared<EventQueue>();
  absl::StatusOr<uint64_t> watch =
      backend->WatchJob(job_id, client, [queue](const v1::Job* job, const absl::Status& status) {
        std::lock_guard<std::mutex> lock(queue->mu);
        if (job == nullptr) {
          queue->ended = true;
          queue->end_status = status;
        } else {
          if (queue->jobs.size() >= kMaxQueuedEvents) queue->jobs.pop_front();
          queue->jobs.push_back(*job);
        }
        queue->cv.notify_one();
      });
  if (!watch.ok()) {
    writer.Write(absl::StrCat(
        "event: error\ndata: ", JsonQuote(std::string(watch.status().message())), "\n\n"));
    return;
  }
  bool done = false;
  while (!done) {
    std::deque<v1::Job> jobs;
    bool ended = false;
    absl::Status end_status;
    {
      std::unique_lock<std::mutex> lock(queue->mu);
      queue->cv.wait_for(lock, std::chrono::duration<double>(keepalive_seconds),
                         [&] { return !queue->jobs.empty() || queue->ended; });
      jobs.swap(queue->jobs);
      ended = queue->ended;
      end_status = queue->end_status;
    }
    if (jobs.empty() && !ended && !writer.Write(": keepalive\n\n")) break;
    for (const v1::Job& job : jobs) {
      absl::StatusOr<std::string> json = ToJson(job);
      if (!json.ok() || !writer.Write(absl::StrCat("event: job\ndata: ", *json, "\n\n"))) {
        done = true;
        break;
      }
      if (IsFinal(job.state())) done = true;
    }
    if (ended && !done) {
      // The backend closed the watch (shutdown): the client reconnects and watches again.
      writer.Write(absl::StrCat(
          "event: error\ndata: ", JsonQuote(std::string(end_status.message())), "\n\n"));
      done = true;
    }
  }
  backend->Unwatch(*watch);
}

class Gateway {
 public:
  Gateway(VideoBackend* backend, FleetBackend* fleet, const GatewayOptions& options)
      : backend_(backend), fleet_(fleet), options_(options) {}

  common::HttpResponse Serve(const common::HttpRequest& request) {
    const std::string rest = request.path.substr(sizeof(kNativePrefix) - 1);
    if (rest == "jobs") return Jobs(request);
    if (rest == "models") {
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      return Json(backend_->ListModels());
    }
    if (rest == "workers") {
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      return Json(backend_->ListWorkers());
    }
    if (rest == "fleet" && fleet_ != nullptr) {
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      return Json(fleet_->GetFleet());
    }
    if (rest.rfind("jobs/", 0) == 0) return Job(request, rest.substr(5));
    return Error(absl::NotFoundError(absl::StrCat("path: no resource ", request.path)));
  }

 private:
  common::HttpResponse Jobs(const common::HttpRequest& request) {
    if (request.method == "POST") {
      v1::SubmitVideoRequest submit;
      google::protobuf::util::JsonParseOptions options;
      const auto parsed =
          google::protobuf::util::JsonStringToMessage(request.body, &submit, options);
      if (!parsed.ok()) {
        return Error(absl::InvalidArgumentError(
            absl::StrCat("body: not a JSON SubmitVideoRequest (",
                         std::string(parsed.message()).substr(0, 200), ")")));
      }
      return Json(backend_->SubmitVideo(submit));
    }
    if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
    absl::StatusOr<v1::ListJobsRequest> list = ListRequest(request.query);
    if (!list.ok()) return Error(list.status());
    return Json(backend_->ListJobs(*list));
  }

  common::HttpResponse Job(const common::HttpRequest& request, const std::string& rest) {
    std::string job_id = rest;
    std::string action;
    if (const size_t slash = rest.find('/'); slash != std::string::npos) {
      job_id = rest.substr(0, slash);
      action = rest.substr(slash + 1);
    } else if (const size_t colon = rest.find(':'); colon != std::string::npos) {
      job_id = rest.substr(0, colon);
      action = rest.substr(colon);
    }
    if (absl::Status s = CheckJobId(job_id); !s.ok()) return Error(s);
    if (action.empty()) {
      if (request.method == "DELETE") {
        absl::Status deleted = backend_->DeleteJob(job_id);
        if (!deleted.ok()) return Error(deleted);
        v1::DeleteJobResponse response;
        response.set_job_id(job_id);
        response.set_deleted(true);
        return Json(absl::StatusOr<v1::DeleteJobResponse>(response));
      }
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      return Json(backend_->GetJob(job_id));
    }
    if (action == ":cancel") {
      if (absl::Status s = NeedMethod(request, "POST"); !s.ok()) return Error(s);
      return Json(backend_->CancelJob(job_id));
    }
    if (action == "video") {
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      return VideoResponse(backend_, job_id, request, Error);
    }
    if (action == "events") {
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      // Counted with the gRPC watches of the same host (max_watch_streams_per_client).
      return Events(job_id, absl::StrCat("ipv4:", request.remote_address));
    }
    return Error(absl::NotFoundError(absl::StrCat("path: no resource ", request.path)));
  }

  common::HttpResponse Events(const std::string& job_id, const std::string& client) {
    absl::StatusOr<v1::Job> job = backend_->GetJob(job_id);  // 404 before the stream starts
    if (!job.ok()) return Error(job.status());
    if (streams_.fetch_add(1) >= options_.max_event_streams) {
      streams_.fetch_sub(1);
      return Error(absl::UnavailableError(absl::StrCat("events: ", options_.max_event_streams,
                                                       " streams open; poll GET jobs/ID instead")));
    }
    common::HttpResponse response(200, "text/event-stream");
    response.stream = [this, job_id, client](common::HttpBodyWriter& writer) {
      StreamEvents(backend_, job_id, client, options_.event_keepalive_seconds, writer);
      streams_.fetch_sub(1);
    };
    return response;
  }

  VideoBackend* backend_;
  FleetBackend* fleet_;
  GatewayOptions options_;
  std::atomic<int> streams_{0};
};

}  // namespace

void InstallHttpGateway(common::HttpServer* http, VideoBackend* backend,
                        const GatewayOptions& options, FleetBackend* fleet) {
  auto gateway = std::make_shared<Gateway>(backend, fleet, options);
  http->HandlePrefix(kNativePrefix, [gateway](const common::HttpRequest& request) {
    return gateway->Serve(request);
  });
}

}  // namespace turbovid::server
