// download / delete / models / workers: fetch a finished video, remove a job, and what the
// scheduler offers and who serves it (ListModels, ListWorkers).
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "tools/args.h"
#include "tools/commands.h"

namespace turbovid::tools {
namespace {

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

// Parses the common flags (--scheduler, --timeout) plus `value_flags` / `bool_flags`; "-o" is
// "--out".
absl::StatusOr<Args> ParseWith(std::vector<std::string> argv, std::set<std::string> value_flags,
                               const std::set<std::string>& bool_flags) {
  for (std::string& a : argv) {
    if (a == "-o") a = "--out";
  }
  value_flags.insert({"scheduler", "timeout"});
  return Args::Parse(argv, value_flags, bool_flags);
}

std::string Gib(int64_t bytes) {
  return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / (int64_t{1} << 30));
}

}  // namespace

int DownloadCommand(const std::vector<std::string>& argv) {
  auto args = ParseWith(argv, {"out"}, {});
  if (!args.ok()) return ReportError(args.status()) + 1;
  if (args->positional().size() != 1) {
    std::fprintf(stderr, "usage: turbovid download JOB_ID [-o FILE.mp4]\n");
    return 2;
  }
  auto timeout = args->GetDouble("timeout", 300);
  if (!timeout.ok()) return ReportError(timeout.status()) + 1;
  const std::string job_id = args->positional()[0];
  const std::string out = args->Get("out", absl::StrCat(job_id, ".mp4"));
  VideoClient client(args->Get("scheduler", kDefaultScheduler), absl::Seconds(*timeout));
  auto bytes = client.Download(job_id, out);
  if (!bytes.ok()) return ReportError(bytes.status());
  std::printf("video %s (%lld bytes)\n", out.c_str(), static_cast<long long>(*bytes));
  return 0;
}

int DeleteCommand(const std::vector<std::string>& argv) {
  auto args = ParseWith(argv, {}, {});
  if (!args.ok()) return ReportError(args.status()) + 1;
  if (args->positional().size() != 1) {
    std::fprintf(stderr, "usage: turbovid delete JOB_ID\n");
    return 2;
  }
  VideoClient client(args->Get("scheduler", kDefaultScheduler));
  if (absl::Status s = client.Delete(args->positional()[0]); !s.ok()) return ReportError(s);
  std::printf("job %s deleted\n", args->positional()[0].c_str());
  return 0;
}

int ModelsCommand(const std::vector<std::string>& argv) {
  auto args = ParseWith(argv, {}, {"json"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  VideoClient client(args->Get("scheduler", kDefaultScheduler));
  auto models = client.ListModels();
  if (!models.ok()) return ReportError(models.status());
  if (args->Has("json")) {
    std::printf("%s\n", ToJson(*models).c_str());
    return 0;
  }
  std::printf("%-18s %-12s %-4s %-6s %-6s %-8s %-26s %s\n", "MODEL", "VARIANT", "KIND", "STEPS",
              "SAMPLER", "DEFAULT", "NODE CLASSES", "WORKERS (LOADED)");
  for (const v1::ModelInfo& m : models->models()) {
    for (const v1::VariantInfo& v : m.variants()) {
      const std::string defaults = absl::StrCat(
          m.default_width_pixels(), "x", m.default_height_pixels(), "x", m.default_num_frames());
      std::printf("%-18s %-12s %-4s %-6s %-6s %-8s %-26s %d (%d)%s\n", m.model_id().c_str(),
                  absl::StrCat(v.variant(), v.is_default() ? "*" : "").c_str(),
                  v.is_i2v() ? "I2V" : "T2V",
                  absl::StrCat(v.default_steps(), "/", v.max_steps()).c_str(), v.sampler().c_str(),
                  defaults.c_str(), absl::StrJoin(v.node_classes(), ",").c_str(), v.workers(),
                  v.workers_loaded(), v.workers() == 0 ? "  no worker serves it" : "");
    }
  }
  std::printf(
      "* the model's default variant; DEFAULT = width x height x frames; STEPS = "
      "default/max\n");
  return 0;
}

int WorkersCommand(const std::vector<std::string>& argv) {
  auto args = ParseWith(argv, {}, {"json"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  VideoClient client(args->Get("scheduler", kDefaultScheduler));
  auto workers = client.ListWorkers();
  if (!workers.ok()) return ReportError(workers.status());
  if (args->Has("json")) {
    std::printf("%s\n", ToJson(*workers).c_str());
    return 0;
  }
  std::map<std::string, std::vector<const v1::WorkerInfo*>> by_class;
  for (const v1::WorkerInfo& w : workers->workers()) by_class[w.node_class()].push_back(&w);
  if (by_class.empty()) std::printf("no workers registered\n");
  for (const auto& [node_class, list] : by_class) {
    std::printf("node class %s: %zu worker%s\n", node_class.c_str(), list.size(),
                list.size() == 1 ? "" : "s");
    for (const v1::WorkerInfo* w : list) {
      const std::string state = w->draining() ? "draining"
                                : w->job_ids_size()
                                    ? absl::StrCat("busy (", absl::StrJoin(w->job_ids(), ", "), ")")
                                    : "idle";
      std::printf("  %s  %s, %d GPU%s x %s, memory used %s; %s\n", w->worker_id().c_str(),
                  w->gpu_name().c_str(), w->gpu_count(), w->gpu_count() == 1 ? "" : "s",
                  Gib(w->memory_bytes()).c_str(), Gib(w->memory_used_bytes()).c_str(),
                  state.c_str());
      std::vector<std::string> models;
      for (const v1::WorkerModel& m : w->models()) {
        models.push_back(
            absl::StrCat(m.model_id(), ":", m.variant(), m.loaded() ? " (loaded)" : " (lazy)"));
      }
      std::printf("    serves: %s\n", models.empty() ? "-" : absl::StrJoin(models, ", ").c_str());
    }
  }
  return 0;
}

}  // namespace turbovid::tools
