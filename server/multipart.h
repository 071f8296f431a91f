// A multipart/form-data body (RFC 7578) split into its parts, for the OpenAI-compatible create
// call with an `input_reference` upload. Bounded by the HTTP body cap; never throws.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace turbovid::server {

struct FormPart {
  std::string name;      // Content-Disposition name
  std::string filename;  // Content-Disposition filename ("" for a plain field)
  bool has_filename = false;
  std::string content_type;  // the part's Content-Type, "" when absent
  std::string data;
};

// The boundary parameter of a `multipart/form-data; boundary=...` Content-Type; InvalidArgument
// (naming `Content-Type`) when it is not one.
absl::StatusOr<std::string> MultipartBoundary(const std::string& content_type);

// The parts of `body`; InvalidArgument naming `body` when it is not well formed.
absl::StatusOr<std::vector<FormPart>> ParseMultipart(const std::string& body,
                                                     const std::string& boundary);

}  // namespace turbovid::server
