// HTTP helpers of the front ends; the range parser accepts one range ("bytes=A-B", "bytes=A-",
// "bytes=-N"), which is what browsers' media players send.
#include "server/http_util.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/limits.h"

namespace turbovid::server {
namespace {

// Concurrent HTTP streams of progressive jobs not finished yet (each holds a listener thread).
constexpr int kMaxLiveVideoStreams = 32;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> Unescape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%') {
      const bool complete = i + 2 < text.size();
      const int hi = complete ? HexValue(text[i + 1]) : -1;
      const int lo = complete ? HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError("query: bad percent escape");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// [first, last] of `size` bytes for one "bytes=" range; OutOfRange when it cannot be satisfied.
absl::Status ParseRange(const std::string& header, int64_t size, int64_t* first, int64_t* last) {
  const absl::string_view value(header);
  if (value.substr(0, 6) != "bytes=" || value.find(',') != absl::string_view::npos) {
    return absl::OutOfRangeError("Range: only one 'bytes=' range is served");
  }
  const absl::string_view spec = value.substr(6);
  const size_t dash = spec.find('-');
  if (dash == absl::string_view::npos) return absl::OutOfRangeError("Range: no '-'");
  const absl::string_view a = spec.substr(0, dash);
  const absl::string_view b = spec.substr(dash + 1);
  int64_t x = 0, y = 0;
  if (a.empty()) {  // the last N bytes
    if (!absl::SimpleAtoi(b, &y) || y <= 0) return absl::OutOfRangeError("Range: bad suffix");
    *first = std::max<int64_t>(0, size - y);
    *last = size - 1;
  } else {
    if (!absl::SimpleAtoi(a, &x) || x < 0) return absl::OutOfRangeError("Range: bad start");
    *first = x;
    *last = size - 1;
    if (!b.empty()) {
      if (!absl::SimpleAtoi(b, &y) || y < x) return absl::OutOfRangeError("Range: bad end");
      *last = std::min(y, size - 1);
    }
  }
  if (*first >= size) return absl::OutOfRangeError("Range: starts past the end");
  return absl::OkStatus();
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
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

int RetryAfterSeconds(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return 0;
  constexpr absl::string_view kPhrase = "retry after ";
  const absl::string_view message = status.message();
  const size_t at = message.rfind(kPhrase);
  if (at == absl::string_view::npos) return 1;
  absl::string_view rest = message.substr(at + kPhrase.size());
  rest = rest.substr(0, rest.find(' '));
  double seconds = 0;
  if (!absl::SimpleAtod(rest, &seconds) || !(seconds >= 0)) return 1;
  return static_cast<int>(std::clamp(std::ceil(seconds), 1.0, 86400.0));
}

void AddRetryAfter(const absl::Status& status, common::HttpResponse* response) {
  if (const int seconds = RetryAfterSeconds(status); seconds > 0) {
    response->headers.emplace_back("Retry-After", std::to_string(seconds));
  }
}

absl::StatusOr<std::map<std::string, std::string>> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    absl::StatusOr<std::string> key = Unescape(pair.substr(0, eq));
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> value =
        Unescape(eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1));
    if (!value.ok()) return value.status();
    out[*key] = *value;
  }
  return out;
}

std::string JsonQuote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          absl::StrAppend(&out, "\\u00", c < 0x10 ? "0" : "", absl::Hex(c));
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return absl::InternalError("JSON encoding failed");
  }
  return out;
}

absl::Status NeedMethod(const common::HttpRequest& request, const char* method) {
  if (request.method == method) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("method: ", request.method, " ", request.path, " takes ", method));
}

common::HttpResponse VideoResponse(VideoBackend* backend, const std::string& job_id,
                                   const common::HttpRequest& request,
                                   const ErrorRenderer& on_error) {
  absl::StatusOr<std::unique_ptr<ByteSource>> opened = backend->OpenVideo(job_id);
  if (!opened.ok()) return on_error(opened.status());
  std::shared_ptr<ByteSource> source = std::move(*opened);
  if (source->live() != nullptr) {
    // A progressive job still running: the bytes as they come, no length, no ranges; the body
    // ends when the job does (short when it fails or is cancelled: the job's state says why).
    // Each such stream holds a listener thread while it waits: at most kMaxLiveVideoStreams in
    // the process, as the event streams are capped.
    static std::atomic<int> live_streams{0};
    if (live_streams.fetch_add(1) >= kMaxLiveVideoStreams) {
      live_streams.fetch_sub(1);
      return on_error(absl::UnavailableError(
          absl::StrCat("video: ", kMaxLiveVideoStreams,
                       " streams of unfinished videos open; download it once the job is done")));
    }
    common::HttpResponse response(200, "video/mp4");
    response.headers.emplace_back("Content-Disposition",
                                  absl::StrCat("inline; filename=\"", job_id, ".mp4\""));
    response.headers.emplace_back("Cache-Control", "no-store");
    response.stream_bytes = -1;
    response.stream = [source](common::HttpBodyWriter& writer) {
      for (;;) {
        absl::StatusOr<std::string> data = source->Read(common::kVideoChunkBytes);
        if (!data.ok() || data->empty() || !writer.Write(*data)) break;
      }
      live_streams.fetch_sub(1);
    };
    return response;
  }
  const int64_t size = source->size();
  int64_t first = 0, last = size - 1;
  common::HttpResponse response(200, "video/mp4");
  response.headers.emplace_back("Accept-Ranges", "bytes");
  response.headers.emplace_back("Content-Disposition",
                                absl::StrCat("inline; filename=\"", job_id, ".mp4\""));
  const std::string range = request.Header("range");
  if (!range.empty() && size > 0) {
    if (absl::Status parsed = ParseRange(range, size, &first, &last); !parsed.ok()) {
      common::HttpResponse refused(416, "text/plain; charset=utf-8",
                                   absl::StrCat(parsed.message(), "\n"));
      refused.headers.emplace_back("Content-Range", absl::StrCat("bytes */", size));
      return refused;
    }
    if (absl::Status sought = source->Seek(first); !sought.ok()) return on_error(sought);
    response.status = 206;
    response.headers.emplace_back("Content-Range",
                                  absl::StrCat("bytes ", first, "-", last, "/", size));
  }
  const int64_t length = size == 0 ? 0 : last - first + 1;
  response.stream_bytes = length;
  response.stream = [source, length](common::HttpBodyWriter& writer) {
    int64_t left = length;
    while (left > 0) {
      absl::StatusOr<std::string> data =
          source->Read(static_cast<size_t>(std::min<int64_t>(left, common::kVideoChunkBytes)));
      // A short file cannot be repaired mid-response: the client sees a short body.
      if (!data.ok() || data->empty() || !writer.Write(*data)) return;
      left -= static_cast<int64_t>(data->size());
    }
  };
  return response;
}

}  // namespace turbovid::server
