// OpenAI videos API: requests are mapped onto SubmitVideoRequest / ListJobsRequest, jobs onto
// video objects. JSON is read and written through google.protobuf.Struct. Every failure names
// the OpenAI parameter (`param`) it is about; an error of the native layer whose message starts
// with a native field ("num_frames: ...") is re-labelled with the OpenAI field it came from.
#include "server/openai_gateway.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/limits.h"
#include "common/status_macros.h"
#include "server/http_util.h"
#include "server/multipart.h"
#include "server/status.h"

namespace turbovid::server {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr char kVideos[] = "/v1/videos";
constexpr int kDefaultListLimit = 20;
constexpr int kMaxListLimit = 100;

Value Str(const std::string& s) {
  Value v;
  v.set_string_value(s);
  return v;
}
Value Num(double d) {
  Value v;
  v.set_number_value(d);
  return v;
}
Value Null() {
  Value v;
  v.set_null_value(google::protobuf::NULL_VALUE);
  return v;
}
Value Bool(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}
Value Obj(Struct s) {
  Value v;
  *v.mutable_struct_value() = std::move(s);
  return v;
}

common::HttpResponse JsonResponse(int status, const Struct& body) {
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(body, &out).ok()) out = "{}";
  return {status, kJsonType, out + "\n"};
}

// The field a message starts with ("seconds: ..." -> "seconds"; "input_reference.image_url: ..."
// -> "input_reference"), or "" when it starts with none.
std::string LeadingField(const std::string& message) {
  const size_t colon = message.find(':');
  if (colon == std::string::npos || colon > 64) return "";
  const std::string field = message.substr(0, message.find_first_of(".[:"));
  if (field.empty()) return "";
  for (char c : field) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return "";
  }
  return field;
}

// The OpenAI create parameter behind a native SubmitVideoRequest field.
std::string OpenAiFieldOf(const std::string& native) {
  static const std::map<std::string, std::string> kNative = {
      {"model_id", "model"}, {"variant", "model"},         {"num_frames", "seconds"},
      {"size", "size"},      {"image", "input_reference"}, {"prompt", "prompt"}};
  auto it = kNative.find(native);
  return it == kNative.end() ? "" : it->second;
}

common::HttpResponse Error(const absl::Status& status) {
  const std::string message(ToGrpcStatus(status).error_message());  // cut at 1 KiB
  std::string type = "invalid_request_error";
  std::string code;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      code = "invalid_value";
      break;
    case absl::StatusCode::kNotFound:
      code = "not_found";
      break;
    case absl::StatusCode::kFailedPrecondition:
      code = "video_not_ready";
      break;
    case absl::StatusCode::kResourceExhausted:
      type = "rate_limit_error";
      code = "queue_full";
      break;
    default:
      type = "server_error";
      code = absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
  }
  const std::string param = LeadingField(message);
  Struct error;
  (*error.mutable_fields())["message"] = Str(message);
  (*error.mutable_fields())["type"] = Str(type);
  (*error.mutable_fields())["param"] = param.empty() ? Null() : Str(param);
  (*error.mutable_fields())["code"] = Str(code);
  Struct body;
  (*body.mutable_fields())["error"] = Obj(std::move(error));
  common::HttpResponse response = JsonResponse(HttpStatusOf(status.code()), body);
  AddRetryAfter(status, &response);
  return response;
}

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// What a create call asked for, from JSON or from form fields.
struct CreateParams {
  std::optional<std::string> prompt, model, seconds, size, image_url;
  std::optional<std::string> image;  // uploaded input_reference bytes
  bool progressive = false;          // our extension: SubmitVideoRequest.progressive
};

absl::Status SetOnce(std::optional<std::string>* slot, const std::string& name, std::string value) {
  if (slot->has_value()) return Invalid(absl::StrCat(name, ": given twice"));
  *slot = std::move(value);
  return absl::OkStatus();
}

const char kAccepted[] = "accepted: prompt, model, seconds, size, input_reference, progressive";

absl::Status FromJson(const std::string& body, CreateParams* out) {
  Struct root;
  google::protobuf::util::JsonParseOptions options;
  if (!google::protobuf::util::JsonStringToMessage(body, &root, options).ok()) {
    return Invalid("body: not a JSON object");
  }
  for (const auto& [key, value] : root.fields()) {
    const bool text = value.kind_case() == Value::kStringValue;
    if (key == "prompt" || key == "model" || key == "size") {
      if (!text) return Invalid(absl::StrCat(key, ": must be a string"));
      std::optional<std::string>* slot = key == "prompt"  ? &out->prompt
                                         : key == "model" ? &out->model
                                                          : &out->size;
      *slot = value.string_value();
    } else if (key == "seconds") {
      if (value.kind_case() == Value::kNumberValue) {
        out->seconds = absl::StrCat(value.number_value());
      } else if (text) {
        out->seconds = value.string_value();
      } else {
        return Invalid("seconds: must be a string or a number");
      }
    } else if (key == "progressive") {
      if (value.kind_case() != Value::kBoolValue) return Invalid("progressive: must be a boolean");
      out->progressive = value.bool_value();
    } else if (key == "input_reference") {
      if (value.kind_case() != Value::kStructValue) {
        return Invalid(
            "input_reference: must be an object {\"image_url\": \"data:...\"} in "
            "JSON (or a file in multipart/form-data)");
      }
      for (const auto& [sub, sub_value] : value.struct_value().fields()) {
        if (sub == "image_url" && sub_value.kind_case() == Value::kStringValue) {
          out->image_url = sub_value.string_value();
        } else if (sub == "file_id") {
          return Invalid(
              "input_reference.file_id: there is no files API here; send the image "
              "as a data: URL in image_url or upload it with multipart/form-data");
        } else {
          return Invalid(absl::StrCat("input_reference.", sub, ": unknown (accepted: image_url)"));
        }
      }
    } else {
      return Invalid(absl::StrCat(key, ": unknown parameter (", kAccepted, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status FromForm(const common::HttpRequest& request, CreateParams* out) {
  absl::StatusOr<std::string> boundary = MultipartBoundary(request.content_type);
  if (!boundary.ok()) return boundary.status();
  absl::StatusOr<std::vector<FormPart>> parts = ParseMultipart(request.body, *boundary);
  if (!parts.ok()) return parts.status();
  for (FormPart& part : *parts) {
    if (part.name == "input_reference") {
      TV_RETURN_IF_ERROR(SetOnce(&out->image, part.name, std::move(part.data)));
    } else if (part.name == "input_reference[image_url]") {
      TV_RETURN_IF_ERROR(SetOnce(&out->image_url, "input_reference", std::move(part.data)));
    } else if (part.name == "input_reference[file_id]") {
      return Invalid("input_reference.file_id: there is no files API here; upload the image");
    } else if (part.has_filename) {
      return Invalid(
          absl::StrCat(part.name, ": a file where a text field belongs (", kAccepted, ")"));
    } else if (part.name == "prompt") {
      TV_RETURN_IF_ERROR(SetOnce(&out->prompt, part.name, std::move(part.data)));
    } else if (part.name == "model") {
      TV_RETURN_IF_ERROR(SetOnce(&out->model, part.name, std::move(part.data)));
    } else if (part.name == "seconds") {
      TV_RETURN_IF_ERROR(SetOnce(&out->seconds, part.name, std::move(part.data)));
    } else if (part.name == "size") {
      TV_RETURN_IF_ERROR(SetOnce(&out->size, part.name, std::move(part.data)));
    } else if (part.name == "progressive") {
      if (part.data != "true" && part.data != "false") {
        return Invalid("progressive: must be true or false");
      }
      out->progressive = part.data == "true";
    } else {
      return Invalid(
          absl::StrCat(part.name.substr(0, 64), ": unknown parameter (", kAccepted, ")"));
    }
  }
  return absl::OkStatus();
}

// "data:image/png;base64,...." -> the bytes.
absl::StatusOr<std::string> DecodeDataUrl(const std::string& url) {
  if (!absl::StartsWith(url, "data:")) {
    return Invalid(
        "input_reference.image_url: only data: URLs are accepted (the service fetches "
        "nothing); or upload the image with multipart/form-data");
  }
  const size_t comma = url.find(',');
  if (comma == std::string::npos || !absl::EndsWith(url.substr(0, comma), ";base64")) {
    return Invalid(
        "input_reference.image_url: a data: URL must be base64 ('data:TYPE;base64,...')");
  }
  std::string bytes;
  if (!absl::Base64Unescape(absl::string_view(url).substr(comma + 1), &bytes)) {
    return Invalid("input_reference.image_url: the base64 data does not decode");
  }
  return bytes;
}

// "1280x720" -> width, height.
absl::Status ParseSize(const std::string& size, v1::VideoSize* out) {
  const std::vector<std::string> sides = absl::StrSplit(size, 'x');
  int width = 0, height = 0;
  if (sides.size() != 2 || !absl::SimpleAtoi(sides[0], &width) ||
      !absl::SimpleAtoi(sides[1], &height) || width <= 0 || height <= 0) {
    return Invalid(absl::StrCat("size: '", size.substr(0, 64),
                                "' is not WIDTHxHEIGHT (e.g. 1280x720; multiples of 16)"));
  }
  out->set_width_pixels(width);
  out->set_height_pixels(height);
  return absl::OkStatus();
}

const v1::ModelInfo* FindModel(const v1::ListModelsResponse& models, const std::string& id) {
  for (const v1::ModelInfo& m : models.models()) {
    if (m.model_id() == id) return &m;
  }
  return nullptr;
}

const v1::VariantInfo* DefaultVariant(const v1::ModelInfo& model) {
  for (const v1::VariantInfo& v : model.variants()) {
    if (v.is_default()) return &v;
  }
  return model.variants_size() > 0 ? &model.variants(0) : nullptr;
}

// `model` -> (model id, variant). Empty: the first catalog model whose default variant takes
// (or not) an image as the request does, preferring one that a registered worker serves.
absl::Status ResolveModel(const v1::ListModelsResponse& models, const std::string& model,
                          bool with_image, v1::SubmitVideoRequest* out) {
  std::vector<std::string> ids;
  for (const v1::ModelInfo& m : models.models()) ids.push_back(m.model_id());
  if (model.empty()) {
    const v1::ModelInfo* fallback = nullptr;
    for (const v1::ModelInfo& m : models.models()) {
      const v1::VariantInfo* v = DefaultVariant(m);
      if (v == nullptr || v->is_i2v() != with_image) continue;
      if (fallback == nullptr) fallback = &m;
      if (v->workers() > 0) {
        fallback = &m;
        break;
      }
    }
    if (fallback == nullptr) {
      return Invalid(absl::StrCat("model: none given and the catalog has no ",
                                  with_image ? "image" : "text", "-to-video model"));
    }
    out->set_model_id(fallback->model_id());
    return absl::OkStatus();
  }
  const size_t colon = model.find(':');
  const std::string id = model.substr(0, colon);
  const v1::ModelInfo* found = FindModel(models, id);
  if (found == nullptr) {
    return Invalid(absl::StrCat("model: '", model.substr(0, 128),
                                "' is not served here; use a catalog model id or MODEL:VARIANT "
                                "(models: ",
                                absl::StrJoin(ids, ", "), ")"));
  }
  out->set_model_id(id);
  if (colon != std::string::npos) {
    const std::string variant = model.substr(colon + 1);
    std::vector<std::string> names;
    bool known = false;
    for (const v1::VariantInfo& v : found->variants()) {
      names.push_back(v.variant());
      known = known || v.variant() == variant;
    }
    if (!known) {
      return Invalid(absl::StrCat("model: '", variant.substr(0, 64), "' is not a variant of ", id,
                                  " (variants: ", absl::StrJoin(names, ", "), ")"));
    }
    out->set_variant(variant);
  }
  return absl::OkStatus();
}

// A native admission error re-labelled with the OpenAI field it came from.
absl::Status Relabel(const absl::Status& status, const CreateParams& params,
                     const v1::SubmitVideoRequest& request) {
  if (!absl::IsInvalidArgument(status)) return status;
  const std::string message(status.message());
  const std::string field = LeadingField(message);
  const std::string param = OpenAiFieldOf(field);
  if (param.empty() || param == field) return status;
  if (param == "seconds" && params.seconds.has_value()) {
    return Invalid(absl::StrCat("seconds: '", *params.seconds, "' is ", request.num_frames(),
                                " frames at ", kOpenAiFps, " fps; ", message));
  }
  return Invalid(absl::StrCat(param, ": ", message));
}

std::string ModelName(const v1::Job& job, const v1::ListModelsResponse& models) {
  const v1::ModelInfo* model = FindModel(models, job.request().model_id());
  if (model != nullptr && model->default_variant() == job.request().variant()) {
    return job.request().model_id();
  }
  return absl::StrCat(job.request().model_id(), ":", job.request().variant());
}

Struct VideoObject(const v1::Job& job, const v1::ListModelsResponse& models) {
  Struct v;
  auto& f = *v.mutable_fields();
  f["id"] = Str(job.job_id());
  f["object"] = Str("video");
  f["model"] = Str(ModelName(job, models));
  std::string status = "in_progress";
  switch (job.state()) {
    case v1::JOB_STATE_QUEUED:
      status = "queued";
      break;
    case v1::JOB_STATE_SUCCEEDED:
      status = "completed";
      break;
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
      status = "failed";
      break;
    default:
      break;
  }
  f["status"] = Str(status);
  f["progress"] = Num(std::floor(std::clamp(job.progress(), 0.0, 1.0) * 100 + 0.5));
  f["created_at"] = Num(std::floor(job.created_unix_seconds()));
  const bool finished = status == "completed" || status == "failed";
  f["completed_at"] = finished ? Num(std::floor(job.finished_unix_seconds())) : Null();
  f["expires_at"] = Null();  // videos are kept until deleted
  f["prompt"] = Str(job.request().prompt());
  f["remixed_from_video_id"] = Null();
  f["seconds"] = Str(FramesToSeconds(job.request().num_frames()));
  f["size"] = Str(absl::StrCat(job.width_pixels(), "x", job.height_pixels()));
  if (status == "failed") {
    Struct error;
    const bool cancelled = job.state() == v1::JOB_STATE_CANCELLED;
    (*error.mutable_fields())["code"] = Str(cancelled ? "cancelled" : "generation_failed");
    (*error.mutable_fields())["message"] = Str(cancelled ? "cancelled by a client" : job.error());
    f["error"] = Obj(std::move(error));
  } else {
    f["error"] = Null();
  }
  return v;
}

class OpenAiGateway {
 public:
  explicit OpenAiGateway(VideoBackend* backend) : backend_(backend) {}

  common::HttpResponse Serve(const common::HttpRequest& request) {
    if (request.path == kVideos) {
      if (request.method == "POST") return Create(request);
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      return List(request);
    }
    const std::string rest = request.path.substr(sizeof(kVideos));  // after "/v1/videos/"
    const size_t slash = rest.find('/');
    const std::string id = rest.substr(0, slash);
    const std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (id.empty() || static_cast<int64_t>(id.size()) > common::kMaxJobIdBytes) {
      return Error(Invalid("video_id: empty or too long"));
    }
    if (action.empty() && request.method == "DELETE") return Delete(id);
    if (action.empty()) {
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      return Retrieve(id);
    }
    if (action == "content") {
      if (absl::Status s = NeedMethod(request, "GET"); !s.ok()) return Error(s);
      absl::StatusOr<std::map<std::string, std::string>> query = ParseQuery(request.query);
      if (!query.ok()) return Error(query.status());
      auto variant = query->find("variant");
      if (variant != query->end() && variant->second != "video") {
        return Error(Invalid(absl::StrCat("variant: '", variant->second.substr(0, 32),
                                          "' is not offered; only 'video' (the MP4)")));
      }
      return VideoResponse(backend_, id, request, Error);
    }
    return Error(absl::NotFoundError(absl::StrCat("path: ", request.method, " ", request.path,
                                                  " is not offered by this server (remix, edits "
                                                  "and characters are not implemented)")));
  }

 private:
  common::HttpResponse Create(const common::HttpRequest& request) {
    CreateParams params;
    const bool json = absl::StartsWithIgnoreCase(request.content_type, "application/json") ||
                      (request.content_type.empty() && absl::StartsWith(request.body, "{"));
    absl::Status parsed = json ? FromJson(request.body, &params) : FromForm(request, &params);
    if (!parsed.ok()) return Error(parsed);
    v1::SubmitVideoRequest submit;
    if (!params.prompt.has_value() || params.prompt->empty()) {
      return Error(Invalid("prompt: required (the text the video shows)"));
    }
    submit.set_prompt(*params.prompt);
    submit.set_progressive(params.progressive);
    if (params.image_url.has_value()) {
      if (params.image.has_value()) return Error(Invalid("input_reference: given twice"));
      absl::StatusOr<std::string> bytes = DecodeDataUrl(*params.image_url);
      if (!bytes.ok()) return Error(bytes.status());
      params.image = std::move(*bytes);
    }
    if (params.image.has_value()) {
      if (params.image->empty())
        return Error(Invalid("input_reference: the uploaded file is empty"));
      submit.set_image(*params.image);
    }
    absl::StatusOr<v1::ListModelsResponse> models = backend_->ListModels();
    if (!models.ok()) return Error(models.status());
    if (absl::Status s =
            ResolveModel(*models, params.model.value_or(""), params.image.has_value(), &submit);
        !s.ok()) {
      return Error(s);
    }
    if (params.seconds.has_value()) {
      absl::StatusOr<int> frames = SecondsToFrames(*params.seconds);
      if (!frames.ok()) return Error(frames.status());
      submit.set_num_frames(*frames);
    }
    if (params.size.has_value()) {
      if (absl::Status s = ParseSize(*params.size, submit.mutable_size()); !s.ok()) return Error(s);
    }
    submit.set_random_seed(true);  // OpenAI's create has no seed
    const std::string key = request.Header("idempotency-key");
    if (static_cast<int64_t>(key.size()) > common::kMaxClientRequestIdBytes) {
      return Error(Invalid(absl::StrCat("Idempotency-Key: ", key.size(), " bytes > ",
                                        common::kMaxClientRequestIdBytes)));
    }
    submit.set_client_request_id(key);
    absl::StatusOr<v1::Job> job = backend_->SubmitVideo(submit);
    if (!job.ok()) return Error(Relabel(job.status(), params, submit));
    return JsonResponse(200, VideoObject(*job, *models));
  }

  common::HttpResponse Retrieve(const std::string& id) {
    absl::StatusOr<v1::Job> job = backend_->GetJob(id);
    if (!job.ok()) return Error(NotFoundAsVideo(job.status(), id));
    absl::StatusOr<v1::ListModelsResponse> models = backend_->ListModels();
    if (!models.ok()) return Error(models.status());
    return JsonResponse(200, VideoObject(*job, *models));
  }

  common::HttpResponse Delete(const std::string& id) {
    if (absl::Status deleted = backend_->DeleteJob(id); !deleted.ok()) {
      return Error(NotFoundAsVideo(deleted, id));
    }
    Struct body;
    (*body.mutable_fields())["id"] = Str(id);
    (*body.mutable_fields())["object"] = Str("video.deleted");
    (*body.mutable_fields())["deleted"] = Bool(true);
    return JsonResponse(200, body);
  }

  common::HttpResponse List(const common::HttpRequest& request) {
    absl::StatusOr<std::map<std::string, std::string>> query = ParseQuery(request.query);
    if (!query.ok()) return Error(query.status());
    v1::ListJobsRequest list;
    list.set_page_size(kDefaultListLimit);
    for (const auto& [key, value] : *query) {
      if (key == "after") {
        list.set_after_job_id(value);
      } else if (key == "limit") {
        int limit = 0;
        if (!absl::SimpleAtoi(value, &limit) || limit < 1 || limit > kMaxListLimit) {
          return Error(Invalid(absl::StrCat("limit: '", value.substr(0, 32), "' is not in [1, ",
                                            kMaxListLimit, "]")));
        }
        list.set_page_size(limit);
      } else if (key == "order") {
        if (value != "asc" && value != "desc") {
          return Error(
              Invalid(absl::StrCat("order: '", value.substr(0, 32), "' is not asc or desc")));
        }
        list.set_oldest_first(value == "asc");
      } else {
        return Error(Invalid(absl::StrCat(key.substr(0, 64),
                                          ": unknown parameter (accepted: after, limit, order)")));
      }
    }
    absl::StatusOr<v1::ListJobsResponse> jobs = backend_->ListJobs(list);
    if (!jobs.ok()) {
      const std::string message(jobs.status().message());
      if (absl::StartsWith(message, "after_job_id:")) {
        return Error(Invalid(absl::StrCat("after: ", message.substr(14))));
      }
      return Error(jobs.status());
    }
    absl::StatusOr<v1::ListModelsResponse> models = backend_->ListModels();
    if (!models.ok()) return Error(models.status());
    Struct body;
    auto& f = *body.mutable_fields();
    f["object"] = Str("list");
    Value data;
    for (const v1::Job& job : jobs->jobs()) {
      *data.mutable_list_value()->add_values() = Obj(VideoObject(job, *models));
    }
    if (jobs->jobs_size() == 0) data.mutable_list_value();
    f["data"] = std::move(data);
    f["first_id"] = jobs->jobs_size() > 0 ? Str(jobs->jobs(0).job_id()) : Null();
    f["last_id"] = jobs->jobs_size() > 0 ? Str(jobs->jobs(jobs->jobs_size() - 1).job_id()) : Null();
    f["has_more"] = Bool(!jobs->next_page_token().empty());
    return JsonResponse(200, body);
  }

  // A job id that is unknown or deleted: "video_id: ...".
  static absl::Status NotFoundAsVideo(const absl::Status& status, const std::string& id) {
    if (!absl::IsNotFound(status)) return status;
    return absl::NotFoundError(
        absl::StrCat("video_id: no video '", id.substr(0, 128), "' (", status.message(), ")"));
  }

  VideoBackend* backend_;
};

}  // namespace

absl::StatusOr<int> SecondsToFrames(const std::string& seconds) {
  double s = 0;
  if (!absl::SimpleAtod(seconds, &s) || !std::isfinite(s) || s <= 0) {
    return Invalid(
        absl::StrCat("seconds: '", seconds.substr(0, 32), "' is not a positive number of seconds"));
  }
  const double steps = s * kOpenAiFps / 4;  // frames are 4k+1: seconds in steps of 4/16
  if (steps > 1e6 || std::fabs(steps - std::round(steps)) > 1e-9) {
    return Invalid(absl::StrCat("seconds: '", seconds.substr(0, 32), "' is not a multiple of ",
                                4.0 / kOpenAiFps, " (videos have 4k+1 frames at ", kOpenAiFps,
                                " fps)"));
  }
  return static_cast<int>(std::round(steps)) * 4 + 1;
}

std::string FramesToSeconds(int num_frames) {
  const int ticks = std::max(0, num_frames - 1);  // 1/16 s each
  if (ticks % kOpenAiFps == 0) return absl::StrCat(ticks / kOpenAiFps);
  std::string out = absl::StrCat(static_cast<double>(ticks) / kOpenAiFps);
  return out;
}

void InstallOpenAiGateway(common::HttpServer* http, VideoBackend* backend) {
  auto gateway = std::make_shared<OpenAiGateway>(backend);
  auto serve = [gateway](const common::HttpRequest& request) { return gateway->Serve(request); };
  http->Handle(kVideos, serve);
  http->HandlePrefix(absl::StrCat(kVideos, "/"), serve);
}

}  // namespace turbovid::server
