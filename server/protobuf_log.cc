#include "server/protobuf_log.h"

#include <google/protobuf/stubs/logging.h>

#include <atomic>
#include <chrono>
#include <string>

#include "common/logging.h"

namespace turbovid::server {
namespace {

std::atomic<int64_t> g_next_allowed_ns{0};
std::atomic<int64_t> g_dropped{0};

void Handle(google::protobuf::LogLevel level, const char* filename, int line,
            const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    TV_LOG(ERROR) << "protobuf " << filename << ":" << line << ": " << message;
    return;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t allowed = g_next_allowed_ns.load();
  if (now < allowed || !g_next_allowed_ns.compare_exchange_strong(allowed, now + 1'000'000'000)) {
    g_dropped.fetch_add(1);
    return;
  }
  const int64_t dropped = g_dropped.exchange(0);
  TV_LOG(WARNING) << "protobuf: " << message
                  << (dropped > 0 ? " (" + std::to_string(dropped) + " like it dropped since the last)"
                                  : std::string());
}

}  // namespace

void RouteProtobufLogs() { google::protobuf::SetLogHandler(&Handle); }

}  // namespace turbovid::server
