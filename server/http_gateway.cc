// JSON <-> proto with protobuf's util::JsonStringToMessage / MessageToJsonString; statuses map
// to HTTP codes the way google.rpc does (grpc-gateway's table).
#include "server/http_gateway.h"

#include <google/protobuf/util/json_util.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/status.h"

namespace turbovid::server {
namespace {

constexpr char kJson[] = "application/json";

int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

common::HttpResponse Error(const absl::Status& status) {
  const grpc::Status cut = ToGrpcStatus(status);  // the same 1 KiB cut as gRPC answers
  std::string escaped;
  for (char c : cut.error_message()) {
    if (c == '"' || c == '\\') {
      escaped += '\\';
      escaped += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      escaped += ' ';
    } else {
      escaped += c;
    }
  }
  return {HttpStatus(status.code()), kJson,
          absl::StrCat("{\"code\": \"", absl::StatusCodeToString(status.code()),
                       "\", \"message\": \"", escaped, "\"}\n")};
}

template <typename Message>
common::HttpResponse Json(const absl::StatusOr<Message>& message) {
  if (!message.ok()) return Error(message.status());
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(*message, &out, options).ok()) {
    return Error(absl::InternalError("JSON encoding failed"));
  }
  return {200, kJson, out + "\n"};
}

// The value of `key` in an undecoded query string ("" when absent). Job ids need no decoding.
std::string QueryValue(const std::string& query, const std::string& key) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    const size_t eq = pair.find('=');
    if (eq != absl::string_view::npos && pair.substr(0, eq) == key) {
      return std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

absl::Status NeedMethod(const common::HttpRequest& request, const char* method) {
  if (request.method == method) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("method: ", request.method, " ", request.path, " takes ", method));
}

}  // namespace

void InstallHttpGateway(common::HttpServer* http, VideoBackend* backend) {
  http->Handle("/v1/videos", [backend](const common::HttpRequest& request) {
    if (request.method == "POST") {
      v1::SubmitVideoRequest submit;
      google::protobuf::util::JsonParseOptions options;
      if (!google::protobuf::util::JsonStringToMessage(request.body, &submit, options).ok()) {
        return Error(absl::InvalidArgumentError("body: not a JSON SubmitVideoRequest"));
      }
      return Json(backend->SubmitVideo(submit));
    }
    if (absl::Status status = NeedMethod(request, "GET"); !status.ok()) return Error(status);
    const std::string job_id = QueryValue(request.query, "job_id");
    if (!job_id.empty()) return Json(backend->GetJob(job_id));
    v1::ListJobsRequest list;
    list.set_page_token(QueryValue(request.query, "page_token"));
    list.set_model_id(QueryValue(request.query, "model_id"));
    return Json(backend->ListJobs(list));
  });
  http->Handle("/v1/videos:cancel", [backend](const common::HttpRequest& request) {
    if (absl::Status status = NeedMethod(request, "POST"); !status.ok()) return Error(status);
    const std::string job_id = QueryValue(request.query, "job_id");
    if (job_id.empty()) return Error(absl::InvalidArgumentError("job_id: empty"));
    return Json(backend->CancelJob(job_id));
  });
  http->Handle("/v1/videos:content", [backend](const common::HttpRequest& request) {
    if (absl::Status status = NeedMethod(request, "GET"); !status.ok()) return Error(status);
    const std::string job_id = QueryValue(request.query, "job_id");
    if (job_id.empty()) return Error(absl::InvalidArgumentError("job_id: empty"));
    absl::StatusOr<std::unique_ptr<ByteSource>> source = backend->OpenVideo(job_id);
    if (!source.ok()) return Error(source.status());
    common::HttpResponse response{200, "video/mp4", ""};
    response.body.reserve(static_cast<size_t>((*source)->size()));
    while (true) {
      absl::StatusOr<std::string> data = (*source)->Read(1 << 20);
      if (!data.ok()) return Error(data.status());
      if (data->empty()) break;
      response.body += *data;
    }
    return response;
  });
}

}  // namespace turbovid::server
