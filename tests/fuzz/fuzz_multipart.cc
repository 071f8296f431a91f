// libFuzzer: the multipart/form-data parser of the OpenAI-compatible create call on arbitrary
// bytes (the first line is the Content-Type, the rest the body) must return a status, never
// crash or read out of bounds; every part it returns lies inside the body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string content_type = input.substr(0, newline);
  const std::string body = newline == std::string::npos ? "" : input.substr(newline + 1);
  auto boundary = turbovid::server::MultipartBoundary(content_type);
  if (!boundary.ok()) return 0;
  auto parts = turbovid::server::ParseMultipart(body, *boundary);
  if (parts.ok()) {
    size_t total = 0;
    for (const auto& part : *parts) total += part.data.size() + part.name.size();
    if (total > body.size()) __builtin_trap();
  }
  return 0;
}
