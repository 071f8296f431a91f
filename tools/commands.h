// Subcommands of the `turbovid` CLI. Each takes the arguments after its name and returns the
// process exit code: 0 success, 1 the job or RPC failed, 2 bad usage.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/progress.h"
#include "tools/video_client.h"

namespace turbovid::tools {

int GenerateCommand(const std::vector<std::string>& args);
int StatusCommand(const std::vector<std::string>& args);
int WatchCommand(const std::vector<std::string>& args);
int CancelCommand(const std::vector<std::string>& args);
int ListCommand(const std::vector<std::string>& args);
int DownloadCommand(const std::vector<std::string>& args);  // catalog_commands.cc
int DeleteCommand(const std::vector<std::string>& args);
int ModelsCommand(const std::vector<std::string>& args);
int WorkersCommand(const std::vector<std::string>& args);
int DemoCommand(const std::vector<std::string>& args);   // demo.cc
int ProbeCommand(const std::vector<std::string>& args);  // probe.cc: local, no scheduler
int FleetCommand(const std::vector<std::string>& args);  // fleet.cc: FleetService.GetFleet

// Submits, follows the job with `printer`, downloads the MP4 to out_path when it succeeds.
// Returns the final job; a FAILED or CANCELLED job is returned too (the caller decides).
absl::StatusOr<v1::Job> GenerateVideo(VideoClient& client, const v1::SubmitVideoRequest& request,
                                      const std::string& out_path, ProgressPrinter* printer,
                                      absl::Duration timeout);

// Prints "error: CODE: message" on stderr and returns 1 (2 for InvalidArgument from parsing).
int ReportError(const absl::Status& status);

inline constexpr char kDefaultScheduler[] = "127.0.0.1:50051";

}  // namespace turbovid::tools
