// turbovid: the client CLI of the turbovid service (generate, status, watch, cancel, list,
// download, delete, models, workers, fleet, demo) and a local MP4 probe. `--help` (anywhere)
// prints the usage on stdout and exits 0; bad usage prints it on stderr and exits 2.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/commands.h"

namespace {

void Usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: turbovid <command> [flags]   (--scheduler HOST:PORT, default %s)\n"
      "  every command: [--api-key KEY] (else env TURBOVID_API_KEY)\n"
      "                 [--ca-cert FILE.pem] (TLS; else env TURBOVID_CA_CERT)\n"
      "  generate --model ID --prompt TEXT [--variant V] [--image FILE] [--frames N]\n"
      "           [--width W --height H | --resolution 480p --aspect 16:9] [--steps N]\n"
      "           [--seed S] [--attention dense|sla|sagesla] [--priority P] [--negative-prompt TEXT]\n"
      "           [--deadline SECONDS] [--priority-class interactive|standard|batch]\n"
      "           [--request-id ID] [--out FILE.mp4] [--timeout SECONDS] [--json] [--quiet]\n"
      "           [--no-wait]\n"
      "  status JOB_ID [--json]\n"
      "  watch JOB_ID [--json]\n"
      "  cancel JOB_ID [--json]\n"
      "  list [--state queued|assigned|running|succeeded|failed|cancelled] [--model ID]\n"
      "       [--page-size N] [--all] [--json]\n"
      "  download JOB_ID [-o FILE.mp4]      (default JOB_ID.mp4)\n"
      "  delete JOB_ID                      (cancels it if unfinished, removes its video)\n"
      "  models [--json]                    (the catalog and the workers serving each variant)\n"
      "  workers [--json]                   (registered workers by node class: what each holds)\n"
      "  fleet [--json]                     (node classes: price, workers, desired workers;\n"
      "                                     the service-time model's estimates)\n"
      "  demo [--dir DIR] [--models configs/models.yaml] [--engine-bin P] [--scheduler-bin P]\n"
      "       [--worker-bin P] [--timeout SECONDS] [--quiet]\n"
      "       (tiny models, a local scheduler and CPU worker, one T2V and one I2V video)\n"
      "  probe FILE.mp4 [--json]\n"
      "       (reads the MP4 here, no scheduler: codec, width, height, frames, fps, duration,\n"
      "       size, faststart, fragments)\n",
      turbovid::tools::kDefaultScheduler);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage(stderr);
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  const auto help = [](const std::string& a) { return a == "--help" || a == "-h" || a == "help"; };
  if (help(command) || std::any_of(args.begin(), args.end(), [](const std::string& a) {
        return a == "--help" || a == "-h";
      })) {
    Usage(stdout);
    return 0;
  }
  if (command == "generate") return turbovid::tools::GenerateCommand(args);
  if (command == "status") return turbovid::tools::StatusCommand(args);
  if (command == "watch") return turbovid::tools::WatchCommand(args);
  if (command == "cancel") return turbovid::tools::CancelCommand(args);
  if (command == "list") return turbovid::tools::ListCommand(args);
  if (command == "download") return turbovid::tools::DownloadCommand(args);
  if (command == "delete") return turbovid::tools::DeleteCommand(args);
  if (command == "models") return turbovid::tools::ModelsCommand(args);
  if (command == "workers") return turbovid::tools::WorkersCommand(args);
  if (command == "demo") return turbovid::tools::DemoCommand(args);
  if (command == "probe") return turbovid::tools::ProbeCommand(args);
  if (command == "fleet") return turbovid::tools::FleetCommand(args);
  std::fprintf(stderr, "turbovid: unknown command '%s'\n", command.c_str());
  Usage(stderr);
  return 2;
}
