// Test helper of the video tests: runs a shell command (ffprobe, ffmpeg) and returns its stdout.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

namespace turbovid::engine::video {

// stdout of `command` run by /bin/sh; "" when it cannot be started.
inline std::string RunCommand(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), &pclose);
  if (pipe == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), pipe.get())) > 0) out.append(buf, n);
  return out;
}

}  // namespace turbovid::engine::video
