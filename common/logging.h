// Leveled, timestamped, thread-safe logging to stderr: TV_LOG(INFO) << "listening on " << port;
// Levels DEBUG < INFO < WARNING < ERROR < FATAL; FATAL aborts after writing its line.
#pragma once

#include <sstream>
#include <string>

#include "absl/status/statusor.h"

namespace turbovid::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Lines below this level are dropped (default kInfo; env TV_LOG_LEVEL=debug|info|warning|error).
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
bool LogEnabled(LogLevel level);
// "debug", "info", "warning", "error" (any case) → level; anything else is InvalidArgument.
absl::StatusOr<LogLevel> ParseLogLevel(const std::string& name);

// One log line: collects the message, writes it with a single write when destroyed.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

namespace internal_log {
// `TV_LOG(INFO)` pastes the level name onto `k`.
inline constexpr LogLevel kDEBUG = LogLevel::kDebug;
inline constexpr LogLevel kINFO = LogLevel::kInfo;
inline constexpr LogLevel kWARNING = LogLevel::kWarning;
inline constexpr LogLevel kERROR = LogLevel::kError;
inline constexpr LogLevel kFATAL = LogLevel::kFatal;
// Turns the stream expression into void so the macro is one expression (safe in if/else).
struct Voidify {
  void operator&(std::ostream&) {}
};
}  // namespace internal_log

}  // namespace turbovid::common

#define TV_LOG(severity)                                                                  \
  !::turbovid::common::LogEnabled(::turbovid::common::internal_log::k##severity)          \
      ? (void)0                                                                           \
      : ::turbovid::common::internal_log::Voidify() &                                     \
            ::turbovid::common::LogMessage(::turbovid::common::internal_log::k##severity, \
                                           __FILE__, __LINE__)                            \
                .stream()
