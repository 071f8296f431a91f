// `turbovid fleet`: the scheduler's fleet view (turbovid.v1.FleetService.GetFleet): node classes
// with prices, workers and the autoscaling signal, then the service-time model's estimates.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/video_client.h"

namespace turbovid::tools {

int FleetCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {"scheduler", "timeout", "api-key", "ca-cert"}, {"json"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  auto timeout = args->GetDouble("timeout", 30);
  if (!timeout.ok()) return ReportError(timeout.status()) + 1;
  if (!args->positional().empty()) {
    std::fprintf(stderr, "usage: turbovid fleet [--json]\n");
    return 2;
  }
  // VideoClient reads the credentials from the environment; the flags override it.
  if (args->Has("api-key")) setenv("TURBOVID_API_KEY", args->Get("api-key").c_str(), 1);
  if (args->Has("ca-cert")) setenv("TURBOVID_CA_CERT", args->Get("ca-cert").c_str(), 1);
  VideoClient client(args->Get("scheduler", kDefaultScheduler), absl::Seconds(*timeout));
  absl::StatusOr<v1::GetFleetResponse> got = client.GetFleet();
  if (!got.ok()) return ReportError(got.status());
  const v1::GetFleetResponse& fleet = *got;
  if (args->Has("json")) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(fleet, &out, options).ok()) out = "{}";
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("%-10s %9s %7s %5s %5s %8s %7s %6s %10s %7s\n", "CLASS", "PRICE/H", "WORKERS", "BUSY",
              "IDLE", "DRAINING", "DESIRED", "QUEUED", "QUEUED_S", "LOAD");
  for (const v1::NodeClassStatus& c : fleet.node_classes()) {
    std::printf("%-10s %9.3f %7d %5d %5d %8d %7d %6d %10.1f %7.2f\n", c.node_class().c_str(),
                c.price_per_hour(), c.workers(), c.busy_workers(), c.idle_workers(),
                c.draining_workers(), c.desired_workers(), c.queued_jobs(), c.queued_seconds(),
                c.offered_load());
  }
  std::printf("\n%-10s %-6s %-18s %-11s %-10s %6s %5s %10s %10s %-16s %7s\n", "CLASS", "LAYOUT",
              "MODEL", "VARIANT", "SIZE", "FRAMES", "STEPS", "SECONDS", "COST", "SOURCE",
              "SAMPLES");
  for (const v1::ServiceTimeEstimate& e : fleet.service_times()) {
    const std::string size = absl::StrCat(e.width_pixels(), "x", e.height_pixels());
    std::printf("%-10s %-6s %-18s %-11s %-10s %6d %5d %10.3f %10.6f %-16s %7lld\n",
                e.node_class().c_str(), e.layout().c_str(), e.model_id().c_str(),
                e.variant().c_str(), size.c_str(), e.num_frames(), e.num_steps(), e.seconds(),
                e.cost(), e.source().c_str(), static_cast<long long>(e.samples()));
  }
  return 0;
}

}  // namespace turbovid::tools
