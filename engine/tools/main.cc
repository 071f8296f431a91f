// turbovid-engine: golden | generate | make-tiny-checkpoint | inspect | bench.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "engine/comm/parallel.h"
#include "engine/backends/backends.h"
#include "engine/testing/golden.h"
#include "engine/tools/commands.h"

namespace {

using turbovid::engine::Backend;

void Usage() {
  std::fprintf(stderr,
               "usage: turbovid-engine <command> [args]\n"
               "  golden [--backend cpu|cuda] [--tp N] [--sp N] [--collectives] [-v] CASE_DIR...\n"
               "  generate --model-dir D --prompt P [--image I] [--frames 81] [--resolution 480p]\n"
               "           [--aspect 16:9] [--steps 4] [--seed S] [--attention dense|sla|sagesla] --out out.mp4\n"
               "  make-tiny-checkpoint --kind t2v|i2v-moe --out D [--heads N]\n"
               "  inspect PATH\n"
               "  bench --model wan2.1-t2v-1.3b|wan2.1-t2v-14b|tiny --random-weights | --model-dir D\n"
               "        [--resolution 480p|720p] [--frames 81] [--steps 4] [--attention dense|sla|dense,sla]\n"
               "        [--backend cpu|cuda] [--work-dir DIR] [--stages text,dit,vae,mp4] [--repeat N]\n"
               "        [--json FILE]   (bench --help lists every flag)\n");
}

// One case line: "NAME PASS|FAIL rel_l2=… tol=…" (+ details).
bool PrintReport(const std::string& name, const absl::StatusOr<turbovid::engine::golden::GoldenReport>& report,
                 bool verbose) {
  if (!report.ok()) {
    std::printf("%s FAIL rel_l2=nan tol=nan (%s)\n", name.c_str(),
                std::string(report.status().message()).c_str());
    return false;
  }
  std::printf("%s %s rel_l2=%.3g tol=%.3g\n", name.c_str(), report->pass() ? "PASS" : "FAIL",
              report->worst_rel_l2(), report->worst_tol());
  if (verbose) {
    for (const auto& l : report->lines()) std::printf("    %s\n", l.c_str());
  }
  for (const auto& f : report->failures()) std::printf("    failed: %s\n", f.c_str());
  std::fflush(stdout);
  return report->pass();
}

int Golden(const std::vector<std::string>& args) {
  namespace golden = turbovid::engine::golden;
  std::string backend_name = "cpu";
  bool verbose = false;
  turbovid::engine::comm::ParallelLayout layout;
  std::vector<std::string> dirs;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--backend" && i + 1 < args.size()) {
      backend_name = args[++i];
    } else if ((args[i] == "--tp" || args[i] == "--sp") && i + 1 < args.size()) {
      int* size = args[i] == "--tp" ? &layout.tensor_parallel : &layout.sequence_parallel;
      if (!absl::SimpleAtoi(args[++i], size)) size = 0;
    } else if (args[i] == "--collectives") {
      layout.collectives_at_one_rank = true;
    } else if (args[i] == "-v" || args[i] == "--verbose") {
      verbose = true;
    } else {
      dirs.push_back(args[i]);
    }
  }
  if (dirs.empty()) {
    Usage();
    return 2;
  }
  if (absl::Status s = turbovid::engine::comm::ValidateLayout(layout); !s.ok()) {
    std::fprintf(stderr, "golden: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto backend = turbovid::engine::MakeBackend(backend_name);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", std::string(backend.status().message()).c_str());
    return 2;
  }
  const bool parallel = layout.world() > 1 || layout.collectives_at_one_rank;
  if (parallel) {
    std::printf("layout %s: %d rank(s) (threads; %s)\n", layout.ToString().c_str(),
                layout.world(),
                backend_name == "cpu" ? "in-process communicator" : "device communicator: NCCL");
  }
  bool all_pass = true;
  for (const std::string& dir : dirs) {
    const std::string name = golden::GoldenCase::NameOf(dir);
    std::vector<int> heads;
    if (parallel) {
      absl::StatusOr<golden::GoldenCase> c = golden::GoldenCase::Load(dir);
      if (c.ok()) heads = golden::CaseDitHeads(*c);
    }
    if (heads.empty()) {  // one rank, or a kind without a DiT: the layout changes nothing
      all_pass = PrintReport(name, golden::RunCase(dir, **backend), verbose) && all_pass;
      continue;
    }
    bool splits = true;
    for (int h : heads) splits = splits && h % layout.world() == 0;
    if (!splits) {
      // Heads are the unit of both splits: a DiT with fewer heads than ranks runs its attention
      // replicated (DitOptions::allow_replicated_attention), the rest still split.
      std::printf("%s: %d DiT head(s) over %d ranks: attention replicated\n", name.c_str(),
                  heads[0], layout.world());
    }
    auto make = [&](int rank) { return turbovid::engine::MakeBackend(backend_name, rank); };
    all_pass = PrintReport(name, golden::RunCaseParallel(dir, layout, make), verbose) && all_pass;
  }
  return all_pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "golden") return Golden(args);
  if (cmd == "generate") return turbovid::engine::tools::GenerateCommand(args);
  if (cmd == "make-tiny-checkpoint") return turbovid::engine::tools::MakeTinyCheckpointCommand(args);
  if (cmd == "inspect") return turbovid::engine::tools::InspectCommand(args);
  if (cmd == "bench") return turbovid::engine::tools::BenchCommand(args);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    Usage();
    return 0;
  }
  Usage();
  return 2;
}
