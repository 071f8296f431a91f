// turbovid-engine generate: one video from a model folder, in this process, on one backend.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/pipeline/pipeline.h"
#include "engine/tools/commands.h"
#include "engine/video/video.h"

namespace turbovid::engine::tools {
namespace {

const char kUsage[] =
    "usage: turbovid-engine generate --model-dir D --prompt P [--image I] [--frames 81]\n"
    "       [--resolution 480p] [--aspect 16:9] [--width W --height H] [--steps 4] [--seed S]\n"
    "       [--attention dense|sla] [--sla-topk 0.1] [--sampler rcm|unipc] [--ode]\n"
    "       [--backend cpu] [--memory-limit-gib N] [--weights checkpoint|fp8] --out out.mp4\n";

}  // namespace

int GenerateCommand(const std::vector<std::string>& args) {
  std::map<std::string, std::string> flags = {{"--frames", "81"},  {"--resolution", "480p"},
                                              {"--aspect", "16:9"}, {"--steps", "4"},
                                              {"--seed", "0"},      {"--attention", "dense"},
                                              {"--sla-topk", "0.1"}, {"--sampler", "rcm"},
                                              {"--backend", "cpu"}, {"--weights", "checkpoint"}};
  bool ode = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--ode") {
      ode = true;
    } else if (args[i].rfind("--", 0) == 0 && i + 1 < args.size()) {
      flags[args[i]] = args[i + 1];
      ++i;
    } else {
      std::fprintf(stderr, "generate: unexpected argument '%s'\n%s", args[i].c_str(), kUsage);
      return 2;
    }
  }
  if (!flags.count("--model-dir") || !flags.count("--prompt") || !flags.count("--out")) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "generate: %s\n", std::string(s.message()).c_str());
    return 1;
  };
  if (flags["--backend"] != "cpu") return fail(absl::UnimplementedError("--backend: only cpu is built here"));
  GenerateRequest req;
  req.prompt = flags["--prompt"];
  for (const auto& [flag, ok] : {std::pair<const char*, bool>{"--frames", absl::SimpleAtoi(flags["--frames"], &req.frames)},
                                  {"--steps", absl::SimpleAtoi(flags["--steps"], &req.steps)},
                                  {"--seed", absl::SimpleAtoi(flags["--seed"], &req.seed)},
                                  {"--sla-topk", absl::SimpleAtof(flags["--sla-topk"], &req.sla_topk)}}) {
    if (!ok) return fail(absl::InvalidArgumentError(std::string(flag) + ": not a number"));
  }
  if (flags["--attention"] == "sla") {
    req.attention = AttentionMode::kSla;
  } else if (flags["--attention"] == "dense") {
    req.attention = AttentionMode::kDense;
  } else if (flags["--attention"] == "sagesla") {
    req.attention = AttentionMode::kSageSla;
    req.sagesla_native = true;  // the backend's upstream build
  } else {
    return fail(absl::InvalidArgumentError("--attention: dense, sla or sagesla"));
  }
  req.sampler = flags["--sampler"] == "unipc" ? SamplerKind::kUniPc : SamplerKind::kRcm;
  req.ode = ode;
  if (flags.count("--width") || flags.count("--height")) {
    if (!absl::SimpleAtoi(flags["--width"], &req.width) || !absl::SimpleAtoi(flags["--height"], &req.height)) {
      return fail(absl::InvalidArgumentError("--width/--height: both are needed, as numbers"));
    }
  } else if (absl::Status s = ResolveSize(flags["--resolution"], flags["--aspect"], &req.width, &req.height);
             !s.ok()) {
    return fail(s);
  }
  if (flags.count("--image")) {
    std::ifstream in(flags["--image"], std::ios::binary);
    if (!in) return fail(absl::NotFoundError("--image: cannot open " + flags["--image"]));
    std::stringstream ss;
    ss << in.rdbuf();
    req.image_bytes = ss.str();
  }
  auto backend = MakeCpuBackend();
  if (flags.count("--memory-limit-gib")) {
    double gib = 0;
    if (!absl::SimpleAtod(flags["--memory-limit-gib"], &gib) || !(gib >= 0)) {
      return fail(absl::InvalidArgumentError("--memory-limit-gib: '" + flags["--memory-limit-gib"] +
                                             "' is not a number ≥ 0"));
    }
    backend->SetMemoryLimit(static_cast<int64_t>(gib * 1024.0 * 1024.0 * 1024.0));
  }
  const auto t0 = std::chrono::steady_clock::now();
  // --weights fp8: the turbo-fp8 variant (DiT block linears quantised to e4m3 at load).
  if (flags["--weights"] != "checkpoint" && flags["--weights"] != "fp8") {
    return fail(absl::InvalidArgumentError("--weights: checkpoint or fp8, not '" + flags["--weights"] + "'"));
  }
  PipelineOptions options;
  options.fp8_linears = flags["--weights"] == "fp8";
  auto pipeline = Pipeline::Load(flags["--model-dir"], *backend, nullptr, options);
  if (!pipeline.ok()) return fail(pipeline.status());
  const auto t1 = std::chrono::steady_clock::now();
  auto result = (*pipeline)->Generate(
      req,
      [&](const Progress& p) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        std::fprintf(stderr, "[%7.2fs] %-15s step %d/%d  %3.0f%%\n", s, StageName(p.stage), p.step,
                     p.num_steps, 100 * p.fraction);
      },
      nullptr, /*encode_mp4=*/true);
  if (!result.ok()) return fail(result.status());
  std::ofstream out(flags["--out"], std::ios::binary);
  out.write(result->mp4.data(), static_cast<std::streamsize>(result->mp4.size()));
  if (!out) return fail(absl::PermissionDeniedError("--out: cannot write " + flags["--out"]));
  const auto t2 = std::chrono::steady_clock::now();
  if (backend->memory_limit() > 0) {
    std::printf("memory plan under %s: %s; accounted peak %.1f MiB\n",
                FormatGib(backend->memory_limit()).c_str(), result->memory_plan.Describe().c_str(),
                result->accounted_peak_bytes / 1048576.0);
  }
  std::printf("%s: %lld frames %lldx%lld, load %.2fs, generate %.2fs, peak %.1f MiB\n",
              flags["--out"].c_str(), static_cast<long long>(result->frames.dim(0)),
              static_cast<long long>(result->frames.dim(2)), static_cast<long long>(result->frames.dim(1)),
              std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count(),
              result->peak_bytes / 1048576.0);
  return 0;
}

}  // namespace turbovid::engine::tools
