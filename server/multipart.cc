// multipart/form-data: "--B" CRLF, part headers, CRLF CRLF, data, CRLF "--B" ... "--B--". Text
// before the first delimiter (the preamble) and after the last (the epilogue) is ignored.
#include "server/multipart.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace turbovid::server {
namespace {

constexpr size_t kMaxParts = 64;
constexpr size_t kMaxBoundaryBytes = 70;  // RFC 2046

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("body: multipart/form-data ", what));
}

// `key="value"` or `key=value` parameters after the first ';' of a header value.
std::string Parameter(absl::string_view header, absl::string_view key, bool* found) {
  *found = false;
  std::vector<absl::string_view> pieces = absl::StrSplit(header, ';');
  for (size_t i = 1; i < pieces.size(); ++i) {
    absl::string_view piece = absl::StripAsciiWhitespace(pieces[i]);
    const size_t eq = piece.find('=');
    if (eq == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(piece.substr(0, eq)), key)) continue;
    absl::string_view value = absl::StripAsciiWhitespace(piece.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    *found = true;
    return std::string(value);
  }
  return "";
}

absl::Status ParseHeaders(absl::string_view headers, FormPart* part) {
  bool disposition = false;
  for (absl::string_view line : absl::StrSplit(headers, "\r\n", absl::SkipEmpty())) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) return Bad("part header without ':'");
    const absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "Content-Disposition")) {
      if (!absl::StartsWithIgnoreCase(value, "form-data")) {
        return Bad("part is not Content-Disposition: form-data");
      }
      bool found = false;
      part->name = Parameter(value, "name", &found);
      if (!found) return Bad("part without a name");
      part->filename = Parameter(value, "filename", &part->has_filename);
      disposition = true;
    } else if (absl::EqualsIgnoreCase(name, "Content-Type")) {
      part->content_type = std::string(value);
    }
  }
  if (!disposition) return Bad("part without Content-Disposition");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> MultipartBoundary(const std::string& content_type) {
  if (!absl::StartsWithIgnoreCase(absl::StripAsciiWhitespace(content_type),
                                  "multipart/form-data")) {
    return absl::InvalidArgumentError(
        absl::StrCat("Content-Type: '", content_type.substr(0, 100),
                     "' is neither application/json nor multipart/form-data"));
  }
  bool found = false;
  std::string boundary = Parameter(content_type, "boundary", &found);
  if (!found || boundary.empty() || boundary.size() > kMaxBoundaryBytes) {
    return absl::InvalidArgumentError("Content-Type: multipart/form-data without a valid boundary");
  }
  return boundary;
}

absl::StatusOr<std::vector<FormPart>> ParseMultipart(const std::string& body,
                                                     const std::string& boundary) {
  const std::string delimiter = "--" + boundary;
  size_t at = body.find(delimiter);
  if (at == std::string::npos) return Bad("without its boundary");
  std::vector<FormPart> parts;
  while (true) {
    at += delimiter.size();
    if (body.compare(at, 2, "--") == 0) return parts;  // the close delimiter
    // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.compare(at, 2, "\r\n") != 0) return Bad("delimiter not followed by CRLF");
    at += 2;
    const size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string::npos) return Bad("part headers not ended by an empty line");
    if (parts.size() == kMaxParts) return Bad(absl::StrCat("with more than ", kMaxParts, " parts"));
    FormPart part;
    absl::Status headers =
        ParseHeaders(absl::string_view(body).substr(at, headers_end - at), &part);
    if (!headers.ok()) return headers;
    const size_t data_start = headers_end + 4;
    const size_t next = body.find("\r\n" + delimiter, data_start);
    if (next == std::string::npos) return Bad("part not ended by a delimiter");
    part.data = body.substr(data_start, next - data_start);
    parts.push_back(std::move(part));
    at = next + 2;
  }
}

}  // namespace turbovid::server
