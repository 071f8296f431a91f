// turbovid-engine bench: loads a T2V model folder (or writes a seeded random one of the real sizes)
// the way Pipeline::Load does, then times each stage after a warm-up with backend Synchronize():
// text encode, each DiT forward of an rCM run (dense and/or SLA), VAE decode, frames, MP4 — and
// then, with those models released, Pipeline::Generate end to end (prompt → MP4 file, "e2e").
// Reports median/min/max ms, achieved TFLOP/s (engine/models/flops.h) and peak device memory as a
// table on stdout and optionally JSON (the format bench/torch_reference.py also writes).
// A stage that fails (e.g. an op the backend lacks) is reported and the others still run.
// ~700 lines: every stage is a Bench method sharing its timing, failure and model state.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "engine/backends/backends.h"
#include "engine/comm/in_process.h"
#include "engine/comm/parallel.h"
#include "engine/io/safetensors.h"
#include "engine/io/weights.h"
#include "engine/models/flops.h"
#include "engine/models/text_encoder.h"
#include "engine/pipeline/model_dir.h"
#include "engine/pipeline/pipeline.h"
#include "engine/samplers/noise.h"
#include "engine/samplers/rcm.h"
#include "engine/testing/random_checkpoint.h"
#include "engine/tools/bench_report.h"
#include "engine/tools/commands.h"
#include "engine/video/video.h"

namespace turbovid::engine::tools {
namespace {

using Clock = std::chrono::steady_clock;

const char kUsage[] =
    "usage: turbovid-engine bench --model wan2.1-t2v-1.3b|wan2.1-t2v-14b|wan2.2-i2v-a14b|tiny\n"
    "       --random-weights [--weights bf16|int8|fp8]\n"
    "       | --model-dir D\n"
    "       [--resolution 480p|720p] [--aspect 16:9] [--width W --height H] [--frames 81]\n"
    "       [--steps 4] [--attention dense|sla|sagesla|sagesla_sm89 (comma list)]\n"
    "       [--sla-topk 0.1] [--backend cpu|cuda] [--memory-limit-gib N]\n"
    "       [--work-dir DIR] [--stages text,dit,vae,mp4,e2e] [--repeat 3] [--warmup 1]\n"
    "       [--prompt P] [--seed S] [--json FILE] [--mp4-out FILE] [--dump DIR] [--prepare-only]\n"
    "       [--one-rank-group]\n"
    "--weights int8 writes the random DiT blocks' linears as W8A8 int8 codes + 128x128 block\n"
    "scales (TurboDiffusion's -quant checkpoints; folder <model>-int8), so the int8 linears run.\n"
    "--weights fp8 loads the bf16 checkpoint as turbo-fp8 (block linears to e4m3 at load).\n"
    "wan2.2-i2v-a14b: two 14B experts (I2V); stage dit times the high-noise expert on a random\n"
    "image condition, stage e2e generates from a random image (the budget plans the experts).\n"
    "--one-rank-group loads the DiT and the pipeline in a parallel group of one rank that runs\n"
    "every collective (the device communicator: NCCL on cuda, in-process on cpu); compare with a\n"
    "run without it for the communicator's overhead.\n"
    "--dump DIR writes DIR/engine_dump.safetensors (token ids, text context, the first DiT step's\n"
    "input and velocity per attention mode, a 2-latent-frame VAE decode) for\n"
    "bench/torch_reference.py --check DIR.\n"
    "--memory-limit-gib N holds the backend's tensors within N GiB (docs/memory.md): the e2e\n"
    "stage plans each job's residency to fit, or fails with the job's need and the budget.\n"
    "Stage e2e loads the whole pipeline (after the other stages' models are released) and\n"
    "times Pipeline::Generate, prompt → MP4 file in a temporary folder, per attention mode;\n"
    "each run gets a distinct prompt so that the umT5 prompt cache never answers.\n"
    "TV_PIPELINE_PROFILE=1 prints each Generate's phases to stderr (synchronised per phase:\n"
    "slower, for the split only).\n";

// Words of the bench tokenizer (random_checkpoint.cc): about one token per word, as umT5 gives.
const char kDefaultPrompt[] =
    "a cinematic tracking shot of a young woman in a red coat with an umbrella walks through a "
    "crowded city street at night, neon signs and rain reflections on the wet pavement, the camera "
    "panning slow motion across the busy market behind her, soft warm light, steam rising from a "
    "cup of coffee on a wooden table in the foreground, distant lanterns in the background, "
    "detailed realistic film grain, shallow depth of field, bokeh, vibrant colors, dramatic "
    "lighting, high quality 4k";

struct Options {
  std::string model = "wan2.1-t2v-1.3b";
  std::string model_dir;
  std::string weights = "bf16";  // bf16 | int8 (random checkpoint) | fp8 (quantised at load)
  bool random_weights = false;
  bool prepare_only = false;
  bool one_rank_group = false;  // DiT and pipeline in a one-rank group running every collective
  std::string resolution = "480p";
  std::string aspect = "16:9";
  int width = 0;
  int height = 0;
  int frames = 81;
  int steps = 4;
  std::vector<std::string> attention = {"dense"};
  float sla_topk = 0.1f;
  float memory_limit_gib = 0;  // 0: no budget
  std::string backend = "cpu";
  std::string work_dir = "bench-work";
  std::set<std::string> stages = {"text", "dit", "vae", "mp4", "e2e"};
  int repeat = 3;
  int warmup = 1;
  std::string prompt = kDefaultPrompt;
  uint64_t seed = 0;
  std::string json_path;
  std::string mp4_path;
  std::string dump_dir;
};

// The DiT options of an --attention name: dense, sla, sagesla (the H100 build's numerics) or
// sagesla_sm89 (the RTX 4090/5090 build's).
DitForwardOptions ForwardOptionsOf(const std::string& name, float topk) {
  DitForwardOptions o;
  o.sla_topk = topk;
  if (name == "sla") o.attention = AttentionMode::kSla;
  if (name == "sagesla" || name == "sagesla_sm89") o.attention = AttentionMode::kSageSla;
  if (name == "sagesla_sm89") o.sagesla = SageSlaVariant::kSm89;
  return o;
}

absl::Status ParseOptions(const std::vector<std::string>& args, Options* o) {
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--random-weights") {
      o->random_weights = true;
    } else if (args[i] == "--prepare-only") {
      o->prepare_only = true;
    } else if (args[i] == "--one-rank-group") {
      o->one_rank_group = true;
    } else if (args[i].rfind("--", 0) == 0 && i + 1 < args.size()) {
      flags[args[i]] = args[i + 1];
      ++i;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", args[i], "'"));
    }
  }
  auto str = [&](const char* flag, std::string* out) {
    if (auto it = flags.find(flag); it != flags.end()) *out = it->second, flags.erase(it);
  };
  auto num = [&](const char* flag, auto* out) -> absl::Status {
    auto it = flags.find(flag);
    if (it == flags.end()) return absl::OkStatus();
    bool ok = false;
    if constexpr (std::is_same_v<std::remove_pointer_t<decltype(out)>, float>) {
      ok = absl::SimpleAtof(it->second, out);
    } else {
      ok = absl::SimpleAtoi(it->second, out);
    }
    if (!ok)
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", it->second, "' is not a number"));
    flags.erase(it);
    return absl::OkStatus();
  };
  std::string attention, stages;
  str("--model", &o->model);
  str("--model-dir", &o->model_dir);
  str("--weights", &o->weights);
  str("--resolution", &o->resolution);
  str("--aspect", &o->aspect);
  str("--backend", &o->backend);
  str("--work-dir", &o->work_dir);
  str("--prompt", &o->prompt);
  str("--json", &o->json_path);
  str("--mp4-out", &o->mp4_path);
  str("--dump", &o->dump_dir);
  str("--attention", &attention);
  str("--stages", &stages);
  TV_RETURN_IF_ERROR(num("--width", &o->width));
  TV_RETURN_IF_ERROR(num("--height", &o->height));
  TV_RETURN_IF_ERROR(num("--frames", &o->frames));
  TV_RETURN_IF_ERROR(num("--steps", &o->steps));
  TV_RETURN_IF_ERROR(num("--sla-topk", &o->sla_topk));
  TV_RETURN_IF_ERROR(num("--memory-limit-gib", &o->memory_limit_gib));
  if (!(o->memory_limit_gib >= 0)) return absl::InvalidArgumentError("--memory-limit-gib: must be ≥ 0");
  TV_RETURN_IF_ERROR(num("--repeat", &o->repeat));
  TV_RETURN_IF_ERROR(num("--warmup", &o->warmup));
  TV_RETURN_IF_ERROR(num("--seed", &o->seed));
  if (!flags.empty())
    return absl::InvalidArgumentError(absl::StrCat("unknown flag ", flags.begin()->first));
  if (!attention.empty()) o->attention = absl::StrSplit(attention, ',');
  for (const std::string& a : o->attention) {
    if (a != "dense" && a != "sla" && a != "sagesla" && a != "sagesla_sm89") {
      return absl::InvalidArgumentError(
          absl::StrCat("--attention: '", a, "' is not dense, sla, sagesla or sagesla_sm89"));
    }
  }
  if (!stages.empty()) o->stages = absl::StrSplit(stages, ',');
  for (const std::string& s : o->stages) {
    if (s != "text" && s != "dit" && s != "vae" && s != "mp4" && s != "e2e") {
      return absl::InvalidArgumentError(
          absl::StrCat("--stages: '", s, "' is not text, dit, vae, mp4 or e2e"));
    }
  }
  if (o->weights != "bf16" && o->weights != "int8" && o->weights != "fp8") {
    return absl::InvalidArgumentError(
        absl::StrCat("--weights: '", o->weights, "' is not bf16, int8 or fp8"));
  }
  if (o->weights == "int8" && !o->random_weights) {
    return absl::InvalidArgumentError(
        "--weights int8: only with --random-weights (a --model-dir's checkpoint says its own)");
  }
  if (o->random_weights == !o->model_dir.empty()) {
    return absl::InvalidArgumentError("give exactly one of --random-weights and --model-dir");
  }
  if (o->repeat < 1 || o->warmup < 0)
    return absl::InvalidArgumentError("--repeat must be ≥ 1, --warmup ≥ 0");
  if (o->frames < 1 || (o->frames - 1) % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--frames: ", o->frames, " is not 4k+1"));
  }
  if (o->steps < 1 || o->steps > 4) return absl::InvalidArgumentError("--steps: rCM takes 1 to 4");
  if (o->width == 0 && o->height == 0)
    return ResolveSize(o->resolution, o->aspect, &o->width, &o->height);
  if (o->width < 16 || o->width % 16 != 0 || o->height < 16 || o->height % 16 != 0) {
    return absl::InvalidArgumentError("--width/--height: both positive multiples of 16");
  }
  o->resolution = absl::StrCat(o->width, "x", o->height);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backend>> MakeBackendNamed(const std::string& name,
                                                          std::string* device) {
  *device = "host CPU";
  if (auto info = QueryDevice(name); info.ok() && info->sm_version > 0) {
    *device = absl::StrFormat("%s (sm_%d, %.1f GiB)", info->name, info->sm_version,
                              info->memory_bytes / 1073741824.0);
  }
  return MakeBackend(name);
}

bool AllFinite(const Tensor& t) {
  const float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}

// The first `frames` latent frames of a host [C, T, H, W] tensor.
Tensor FirstFrames(const Tensor& z, int64_t frames) {
  const int64_t c = z.dim(0), t = z.dim(1), hw = z.dim(2) * z.dim(3);
  frames = std::min(frames, t);
  Tensor out = Tensor::Zeros(DType::kF32, {c, frames, z.dim(2), z.dim(3)});
  for (int64_t i = 0; i < c; ++i) {
    std::copy_n(z.data<float>() + i * t * hw, frames * hw, out.data<float>() + i * frames * hw);
  }
  return out;
}

class Bench {
 public:
  Bench(const Options& o, Backend& backend, Report& report)
      : o_(o), backend_(backend), report_(report) {}

  absl::Status Run(const std::string& dir);
  // Inputs and outputs for bench/torch_reference.py --check (empty unless --dump).
  const io::TensorMap& dump() const { return dump_; }

 private:
  // Runs fn() `o_.warmup` times, then `o_.repeat` times, each between two Synchronize() calls;
  // the timed samples land in `row`. fn returns a status.
  template <typename Fn>
  absl::Status Time(Row& row, int warmup, Fn&& fn);
  absl::Status LoadAll(const std::string& dir);
  absl::Status TextStage();
  absl::Status DitStage(const std::string& attention);
  absl::Status VaeStage();
  absl::Status Mp4Stage();
  // Pipeline::Generate end to end for one attention mode; the MP4 goes to `out_dir`.
  absl::Status E2eStage(Pipeline& pipeline, const std::string& attention,
                        const std::string& out_dir);
  absl::Status E2eStages(const std::string& dir);
  bool Has(const char* stage) const { return o_.stages.count(stage) != 0; }
  // Records a failed stage; the bench continues.
  void Fail(const std::string& stage, const std::string& attention, const absl::Status& s);

  // The one-rank group of --one-rank-group (null without it): made before, freed after, the models.
  absl::Status MakeOneRankGroup();

  const Options& o_;
  Backend& backend_;
  Report& report_;
  std::unique_ptr<comm::Communicator> host_comm_;
  std::unique_ptr<comm::ParallelGroups> groups_;
  std::unique_ptr<TextEncoder> text_;
  std::unique_ptr<WanDit> dit_;
  std::unique_ptr<WanVae> vae_;
  DitConfig dit_config_;
  T5Config t5_config_;
  VaeConfig vae_config_;
  Shape latent_shape_;
  Tensor context_;  // [L, text_dim] host F32
  Tensor latent_;   // [16, T, H, W] host F32 (the last rCM result)
  Tensor video_;    // [3, F, H, W] host F32
  Tensor frames_;   // [F, H, W, 3] U8
  io::TensorMap dump_;
  bool i2v_ = false;  // two-expert I2V folder: the DiT stage runs the high-noise expert
};

template <typename Fn>
absl::Status Bench::Time(Row& row, int warmup, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) TV_RETURN_IF_ERROR(fn());
  TV_RETURN_IF_ERROR(backend_.Synchronize());
  backend_.ResetPeakMemory();
  for (int i = 0; i < o_.repeat; ++i) {
    TV_RETURN_IF_ERROR(backend_.Synchronize());
    const auto t0 = Clock::now();
    TV_RETURN_IF_ERROR(fn());
    TV_RETURN_IF_ERROR(backend_.Synchronize());
    row.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  row.peak_bytes = backend_.memory_stats().peak;
  return absl::OkStatus();
}

void Bench::Fail(const std::string& stage, const std::string& attention, const absl::Status& s) {
  Row row;
  row.stage = stage;
  row.attention = attention;
  row.error = std::string(s.message());
  if (row.error.empty()) row.error = s.ToString();
  report_.rows.push_back(row);
  std::fprintf(stderr, "bench: %s%s failed: %s\n", stage.c_str(),
               attention.empty() ? "" : (" (" + attention + ")").c_str(), row.error.c_str());
}

absl::Status Bench::LoadAll(const std::string& dir) {
  TV_ASSIGN_OR_RETURN(ModelDir model_dir, ModelDir::Open(dir));
  vae_config_ = model_dir.vae;
  i2v_ = model_dir.i2v;
  if (auto manifest = io::ReadJsonFile(dir + "/turbovid.json"); manifest.ok()) {
    if (const Json* t5 = manifest->Find("t5")) {
      TV_ASSIGN_OR_RETURN(t5_config_, T5Config::FromJson(*t5));
    }
  }
  auto timed_load = [&](const char* name, auto&& load) {
    Row row;
    row.stage = name;
    const auto t0 = Clock::now();
    absl::Status s = load();
    if (s.ok()) s = backend_.Synchronize();
    if (!s.ok()) return Fail(name, "", s);
    row.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    row.peak_bytes = backend_.memory_stats().in_use;
    report_.rows.push_back(row);
  };
  if (Has("text")) {
    timed_load("load_text", [&]() -> absl::Status {
      TV_ASSIGN_OR_RETURN(text_,
                          TextEncoder::Load(dir, backend_, std::make_shared<PromptCache>(0)));
      return absl::OkStatus();
    });
  }
  if (Has("dit")) {
    timed_load("load_dit", [&]() -> absl::Status {
      TV_ASSIGN_OR_RETURN(io::WeightSet weights, io::WeightSet::Load(model_dir.dit_dirs[0]));
      TV_ASSIGN_OR_RETURN(dit_config_, LoadDitConfig(model_dir.dit_dirs[0], weights));
      DitOptions options;
      options.parallel = groups_.get();
      options.fp8_linears = o_.weights == "fp8";
      TV_ASSIGN_OR_RETURN(dit_, WanDit::Load(dit_config_, weights, backend_, options));
      return absl::OkStatus();
    });
  }
  if (Has("vae")) {
    timed_load("load_vae", [&]() -> absl::Status {
      TV_ASSIGN_OR_RETURN(io::WeightSet weights, io::WeightSet::Load(model_dir.vae_path));
      TV_ASSIGN_OR_RETURN(vae_, WanVae::Load(vae_config_, weights, backend_, /*encoder=*/false,
                                             /*decoder=*/true));
      return absl::OkStatus();
    });
  }
  report_.in_use_after_load = backend_.memory_stats().in_use;
  return absl::OkStatus();
}

absl::Status Bench::TextStage() {
  TV_ASSIGN_OR_RETURN(std::vector<int64_t> ids, text_->Tokenize(o_.prompt));
  report_.text_tokens = static_cast<int64_t>(ids.size());
  Row row;
  row.stage = "text_encode";
  row.flop = T5EncodeFlops(t5_config_, report_.text_tokens);
  row.note = absl::StrCat(report_.text_tokens, " tokens");
  TV_RETURN_IF_ERROR(Time(row, o_.warmup, [&]() -> absl::Status {
    TV_ASSIGN_OR_RETURN(context_, text_->Encode(o_.prompt));  // the cache is off: always computed
    return absl::OkStatus();
  }));
  if (!AllFinite(context_)) return absl::InternalError("text_encode: non-finite encoder output");
  report_.rows.push_back(row);
  if (!o_.dump_dir.empty()) {
    Tensor t = Tensor::Zeros(DType::kI64, {static_cast<int64_t>(ids.size())});
    std::copy(ids.begin(), ids.end(), t.data<int64_t>());
    dump_["text.ids"] = t;
    dump_["text.context"] = context_.Clone();
  }
  return absl::OkStatus();
}

absl::Status Bench::DitStage(const std::string& attention) {
  const DitForwardOptions mode = ForwardOptionsOf(attention, o_.sla_topk);
  const bool sla = mode.attention != AttentionMode::kDense;
  TV_RETURN_IF_ERROR(dit_->CheckForwardOptions(mode));
  if (!context_.defined()) {
    // No text stage: a random context of the bench prompt's typical length.
    context_ = GaussianNoise({64, dit_config_.text_dim}, o_.seed, 99);
  }
  Tensor context = context_.Clone();
  for (int64_t i = 0; i < context.numel(); ++i)
    context.data<float>()[i] = RoundToBf16(context.data<float>()[i]);
  if (!o_.dump_dir.empty()) dump_["dit.context"] = context;
  Row ctx_row;
  ctx_row.stage = "dit_context";
  ctx_row.attention = attention;
  WanDit::Context ctx;
  TV_RETURN_IF_ERROR(Time(ctx_row, /*warmup=*/0, [&]() -> absl::Status {
    TV_ASSIGN_OR_RETURN(ctx, dit_->PrepareContext(context));
    return absl::OkStatus();
  }));
  report_.rows.push_back(ctx_row);

  const SlaShape sla_shape{o_.sla_topk, 128, 64};
  const DitFlops flops = DitForwardFlops(dit_config_, latent_shape_[1], latent_shape_[2],
                                         latent_shape_[3], sla ? &sla_shape : nullptr);
  std::vector<Row> steps(o_.steps);
  for (int i = 0; i < o_.steps; ++i) {
    steps[i].stage = "dit_forward";
    steps[i].attention = attention;
    steps[i].step = i + 1;
    steps[i].flop = flops.total();
    steps[i].flop_dense_equiv = flops.total() - flops.self_attention + flops.self_attention_dense;
  }
  Row total;
  total.stage = "dit_sample_total";
  total.attention = attention;
  total.note = absl::StrCat(o_.steps, " rCM steps incl. sampler and noise draws");
  const Tensor noise = GaussianNoise(latent_shape_, o_.seed, 0);
  // I2V: a random condition in place of mask + image latent (the DiT's extra input channels).
  Tensor y;
  if (dit_config_.in_dim > latent_shape_[0]) {
    y = GaussianNoise({dit_config_.in_dim - latent_shape_[0], latent_shape_[1], latent_shape_[2],
                       latent_shape_[3]},
                      o_.seed, 98);
  }
  for (int i = 0; i < o_.warmup; ++i) {
    TV_RETURN_IF_ERROR(dit_->Forward(noise, y.defined() ? &y : nullptr, 999.0, ctx, mode).status());
  }
  TV_RETURN_IF_ERROR(backend_.Synchronize());
  backend_.ResetPeakMemory();
  RcmOptions options;
  options.steps = o_.steps;
  for (int r = 0; r < o_.repeat; ++r) {
    int step = 0;
    const auto t0 = Clock::now();
    // As Pipeline::Generate: the noise draws overlap the device's work on device backends.
    NoiseStreams streams(latent_shape_, o_.seed, o_.steps, backend_.device() != Device::kCpu);
    auto velocity = [&](const Tensor& x, float t, bool) -> absl::StatusOr<Tensor> {
      TV_RETURN_IF_ERROR(backend_.Synchronize());
      const auto s0 = Clock::now();
      absl::StatusOr<Tensor> v = dit_->Forward(x, y.defined() ? &y : nullptr, t, ctx, mode);
      if (!v.ok()) return v.status();
      TV_RETURN_IF_ERROR(backend_.Synchronize());
      steps[step++].ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - s0).count());
      if (!o_.dump_dir.empty() && r == 0 && step == 1) {
        const std::string p = absl::StrCat("dit.", attention, ".");
        dump_[p + "x"] = x.Clone();
        Tensor ts = Tensor::Zeros(DType::kF32, {1});
        ts.data<float>()[0] = t;
        dump_[p + "t"] = ts;
        dump_[p + "v"] = v->Clone();
      }
      return v;
    };
    auto fresh_noise = [&](int s) { return streams.Get(1 + s); };
    TV_ASSIGN_OR_RETURN(latent_,
                        RcmSample(streams.Get(0), options, velocity, fresh_noise, nullptr));
    total.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    // A non-finite velocity at any step leaves non-finite values in the latent (v is scaled by
    // t_cur > 0), so one check after the timed run covers every forward.
    if (!AllFinite(latent_)) return absl::InternalError("dit_forward: non-finite velocity");
  }
  const int64_t peak = backend_.memory_stats().peak;
  for (Row& row : steps) {
    row.peak_bytes = peak;
    report_.rows.push_back(row);
  }
  total.peak_bytes = peak;
  total.flop = flops.total() * o_.steps;
  report_.rows.push_back(total);
  return absl::OkStatus();
}

absl::Status Bench::VaeStage() {
  if (!latent_.defined()) latent_ = GaussianNoise(latent_shape_, o_.seed, 7);
  Row row;
  row.stage = "vae_decode";
  row.flop = VaeDecodeFlops(vae_config_, latent_shape_[1], latent_shape_[2], latent_shape_[3]);
  // Warm-up on two latent frames at the full size (every kernel and cache path runs once).
  const Tensor warm = FirstFrames(latent_, 2);
  for (int i = 0; i < o_.warmup; ++i) TV_RETURN_IF_ERROR(vae_->Decode(warm).status());
  if (!o_.dump_dir.empty()) {
    TV_ASSIGN_OR_RETURN(Tensor video, vae_->Decode(warm));
    dump_["vae.z"] = warm;
    dump_["vae.video"] = video;
  }
  TV_RETURN_IF_ERROR(Time(row, /*warmup=*/0, [&]() -> absl::Status {
    TV_ASSIGN_OR_RETURN(video_, vae_->Decode(latent_));
    return absl::OkStatus();
  }));
  if (!AllFinite(video_)) return absl::InternalError("vae_decode: non-finite video");
  report_.rows.push_back(row);
  return absl::OkStatus();
}

absl::Status Bench::Mp4Stage() {
  if (!video_.defined()) {
    video_ = Tensor::Zeros(DType::kF32, {3, o_.frames, o_.height, o_.width});
    const Tensor n = GaussianNoise({3, o_.frames, o_.height, o_.width}, o_.seed, 8);
    for (int64_t i = 0; i < n.numel(); ++i) video_.data<float>()[i] = 0.5f * n.data<float>()[i];
  }
  Row frames_row;
  frames_row.stage = "frames";
  frames_row.note = "VAE output → uint8 RGB (host)";
  TV_RETURN_IF_ERROR(Time(frames_row, 0, [&]() -> absl::Status {
    frames_ = video::VideoToFrames(video_);
    return absl::OkStatus();
  }));
  report_.rows.push_back(frames_row);
  Row row;
  row.stage = "mp4_encode";
  const std::string path =
      o_.mp4_path.empty() ? absl::StrCat(o_.work_dir, "/bench-", o_.model, ".mp4") : o_.mp4_path;
  row.note = absl::StrCat("libx264 + write ", path);
  absl::Status s = Time(row, o_.warmup, [&]() -> absl::Status {
    TV_ASSIGN_OR_RETURN(std::string mp4, video::EncodeMp4(frames_));
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(mp4.data(), static_cast<std::streamsize>(mp4.size()));
    out.close();
    if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
    return absl::OkStatus();
  });
  if (absl::IsUnimplemented(s)) {
    row.ms.clear();
    row.note = absl::StrCat("skipped: ", s.message());
    report_.rows.push_back(row);
    return absl::OkStatus();
  }
  TV_RETURN_IF_ERROR(s);
  report_.rows.push_back(row);
  return absl::OkStatus();
}

absl::Status Bench::E2eStage(Pipeline& pipeline, const std::string& attention,
                             const std::string& out_dir) {
  GenerateRequest r;
  r.frames = o_.frames;
  r.width = o_.width;
  r.height = o_.height;
  r.steps = o_.steps;
  r.seed = o_.seed;
  const DitForwardOptions mode = ForwardOptionsOf(attention, o_.sla_topk);
  r.attention = mode.attention;
  r.sagesla = mode.sagesla;
  r.sla_topk = o_.sla_topk;
  if (i2v_) {  // a random picture of the output size
    Tensor rgb = Tensor::Zeros(DType::kU8, {o_.height, o_.width, 3});
    const Tensor n = GaussianNoise({o_.height * o_.width * 3}, o_.seed, 97);
    for (int64_t i = 0; i < rgb.numel(); ++i) {
      const float v = 128.f + 40.f * n.data<float>()[i];
      rgb.data<uint8_t>()[i] = static_cast<uint8_t>(std::clamp(v, 0.f, 255.f));
    }
    TV_ASSIGN_OR_RETURN(r.image_bytes, video::EncodePng(rgb));
    r.adapt_size_to_image = false;
  }
  Row row;
  row.stage = "generate_e2e";
  row.attention = attention;
  const std::string path = absl::StrCat(out_dir, "/", attention, ".mp4");
  const std::vector<std::string>& words = BenchTokenizerWords();
  // Modes share the encoder's cache: each starts at its own share of the word list.
  const size_t mode_index = static_cast<size_t>(
      std::find(o_.attention.begin(), o_.attention.end(), attention) - o_.attention.begin());
  size_t run = mode_index * words.size() / std::max<size_t>(1, o_.attention.size());
  bool mp4 = true;
  int64_t peak = -1, bytes = 0;
  std::string plan, encoder;
  // The MP4's tail per run: the encode wait after the last decoded chunk (GenerateResult).
  Row tail;
  tail.stage = "mp4_tail";
  tail.attention = attention;
  r.return_frames = false;  // as the worker: only the I420 pictures leave the device
  auto once = [&]() -> absl::Status {
    // One more word in front: a fresh prompt each run, so umT5 runs as for a new request.
    r.prompt = absl::StrCat(words[run++ % words.size()], " ", o_.prompt);
    absl::StatusOr<GenerateResult> out = pipeline.Generate(r, nullptr, nullptr, mp4);
    if (absl::IsUnimplemented(out.status()) && mp4) {  // no H.264 encoder built: frames only
      mp4 = false;
      out = pipeline.Generate(r, nullptr, nullptr, mp4);
    }
    if (!out.ok()) return out.status();
    peak = std::max(peak, out->peak_bytes);
    plan = out->memory_plan.Describe();
    if (!mp4) return absl::OkStatus();
    encoder = out->mp4_encoder;
    tail.ms.push_back(out->mp4_tail_seconds * 1e3);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(out->mp4.data(), static_cast<std::streamsize>(out->mp4.size()));
    f.close();
    if (!f) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
    bytes = static_cast<int64_t>(out->mp4.size());
    return absl::OkStatus();
  };
  TV_RETURN_IF_ERROR(Time(row, o_.warmup, once));
  // Generate reports the job's device peak; on the CPU backend it is the process's peak RSS,
  // which is not device memory (the summary line has it as peak host RSS).
  row.peak_bytes = backend_.device() == Device::kCpu && backend_.memory_limit() == 0 ? -1 : peak;
  row.note = mp4 ? absl::StrCat("Pipeline::Generate: prompt → ", bytes, "-byte MP4 file (", encoder,
                                "); measured")
                 : "Pipeline::Generate: prompt → frames (no H.264 encoder built)";
  if (backend_.memory_limit() > 0) {
    absl::StrAppend(&row.note, "; memory budget ", FormatGib(backend_.memory_limit()), ": ", plan);
  }
  report_.rows.push_back(row);
  if (mp4) {
    // Warm-up runs pushed samples too: keep the timed ones (the last `repeat`).
    if (tail.ms.size() > static_cast<size_t>(o_.repeat)) {
      tail.ms.erase(tail.ms.begin(), tail.ms.end() - o_.repeat);
    }
    tail.note = absl::StrCat("encoder ", encoder, " (NVENC probe: ", video::ProbeNvenc().detail,
                             "); from the last chunk's pictures on the host to the MP4");
    report_.rows.push_back(tail);
  }
  return absl::OkStatus();
}

// The stage models are released first, so that the pipeline's own copies fit beside nothing else
// and the row's peak is what a serving process holds.
absl::Status Bench::E2eStages(const std::string& dir) {
  text_.reset();
  dit_.reset();
  vae_.reset();
  video_ = Tensor();
  frames_ = Tensor();
  TV_RETURN_IF_ERROR(backend_.Synchronize());
  Row load;
  load.stage = "load_pipeline";
  const auto t0 = Clock::now();
  PipelineOptions options;
  options.fp8_linears = o_.weights == "fp8";
  TV_ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> pipeline,
                      Pipeline::Load(dir, backend_, groups_.get(), options));
  TV_RETURN_IF_ERROR(backend_.Synchronize());
  load.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  load.peak_bytes = backend_.memory_stats().in_use;
  report_.rows.push_back(load);
  std::string tmpl = (std::filesystem::temp_directory_path() / "turbovid-e2e-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(tmpl, ": cannot create a temporary folder"));
  }
  for (const std::string& a : o_.attention) {
    if (absl::Status s = E2eStage(*pipeline, a, tmpl); !s.ok()) Fail("generate_e2e", a, s);
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return absl::OkStatus();
}

absl::Status Bench::MakeOneRankGroup() {
  std::vector<std::unique_ptr<comm::Communicator>> host = comm::MakeInProcessGroup(1);
  host_comm_ = std::move(host[0]);
  TV_ASSIGN_OR_RETURN(std::unique_ptr<comm::Communicator> device,
                      MakeDeviceCommunicator(backend_, /*device=*/0, *host_comm_));  // MakeBackend's
  comm::ParallelLayout layout;
  layout.collectives_at_one_rank = true;
  TV_ASSIGN_OR_RETURN(groups_, comm::ParallelGroups::Create(std::move(device), layout));
  std::fprintf(stderr, "bench: one-rank group %s, %s collectives\n", layout.ToString().c_str(),
               std::string(groups_->world().kind()).c_str());
  return absl::OkStatus();
}

absl::Status Bench::Run(const std::string& dir) {
  latent_shape_ = {16, (o_.frames - 1) / 4 + 1, o_.height / 8, o_.width / 8};
  if (o_.one_rank_group) TV_RETURN_IF_ERROR(MakeOneRankGroup());
  TV_RETURN_IF_ERROR(LoadAll(dir));
  latent_shape_[0] = dit_ ? dit_config_.out_dim : 16;
  report_.latent = latent_shape_;
  if (dit_ || Has("dit") || Has("e2e")) {
    const DitConfig& c = dit_ ? dit_config_ : DitConfig{};
    report_.tokens = latent_shape_[1] * (latent_shape_[2] / c.patch_size[1]) *
                     (latent_shape_[3] / c.patch_size[2]);
  }
  if (text_) {
    if (absl::Status s = TextStage(); !s.ok()) Fail("text_encode", "", s);
  }
  if (dit_) {
    for (const std::string& a : o_.attention) {
      if (absl::Status s = DitStage(a); !s.ok()) Fail("dit_forward", a, s);
    }
  }
  if (vae_) {
    if (absl::Status s = VaeStage(); !s.ok()) Fail("vae_decode", "", s);
  }
  if (Has("mp4")) {
    if (absl::Status s = Mp4Stage(); !s.ok()) Fail("mp4_encode", "", s);
  }
  if (Has("e2e")) {
    if (absl::Status s = E2eStages(dir); !s.ok()) Fail("generate_e2e", "", s);
  }
  return absl::OkStatus();
}

int64_t PeakRssBytes() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace

int BenchCommand(const std::vector<std::string>& args) {
  if (std::find(args.begin(), args.end(), "--help") != args.end()) {
    std::printf("%s", kUsage);
    return 0;
  }
  Options o;
  if (absl::Status s = ParseOptions(args, &o); !s.ok()) {
    std::fprintf(stderr, "bench: %s\n%s", std::string(s.message()).c_str(), kUsage);
    return 2;
  }
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "bench: %s\n", std::string(s.message()).c_str());
    return 1;
  };
  std::string dir = o.model_dir;
  if (o.random_weights) {
    auto model = RandomModelByName(o.model);
    if (!model.ok()) return fail(model.status());
    if (o.weights == "int8") {
      model->int8_linears = true;
      model->name += "-int8";
      o.model = model->name;
    }
    RandomParts parts;
    const bool e2e = o.stages.count("e2e") != 0;  // the whole pipeline
    parts.text = e2e || o.stages.count("text") != 0;
    parts.dit = e2e || o.stages.count("dit") != 0;  // the VAE is always written (ModelDir needs it)
    auto made = EnsureRandomCheckpoint(
        *model, o.work_dir, parts, o.seed + 1,
        [](const std::string& line) { std::fprintf(stderr, "bench: %s\n", line.c_str()); });
    if (!made.ok()) return fail(made.status());
    dir = *made;
  } else {
    o.model = std::filesystem::path(o.model_dir).filename().string();
  }
  if (o.prepare_only) {
    std::printf("%s\n", dir.c_str());
    return 0;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.work_dir, ec);
  Report report;
  report.model = o.weights == "fp8" ? o.model + "-fp8" : o.model;
  report.model_dir = dir;
  report.backend = o.backend;
  report.width = o.width;
  report.height = o.height;
  report.frames = o.frames;
  report.steps = o.steps;
  report.sla_topk = o.sla_topk;
  report.repeat = o.repeat;
  report.warmup = o.warmup;
  auto backend = MakeBackendNamed(o.backend, &report.device);
  if (!backend.ok()) return fail(backend.status());
  (*backend)->SetMemoryLimit(static_cast<int64_t>(static_cast<double>(o.memory_limit_gib) * (1 << 30)));
  Bench bench(o, **backend, report);
  if (absl::Status s = bench.Run(dir); !s.ok()) return fail(s);
  if (!o.dump_dir.empty()) {
    std::filesystem::create_directories(o.dump_dir, ec);
    const std::string path = o.dump_dir + "/engine_dump.safetensors";
    if (absl::Status s = io::WriteSafetensors(path, bench.dump()); !s.ok()) return fail(s);
  }
  report.peak_host_rss = PeakRssBytes();
  AddPipelineRows(&report);
  PrintReport(report, stdout);
  // The activation arena (sized by the pipeline from the job's shape; the e2e stage) and what
  // did not fit it.
  if (const MemoryStats m = (*backend)->memory_stats(); m.arena_bytes > 0 || m.overflow_count > 0) {
    std::printf("activation arena %.2f GiB, peak use %.2f GiB; %lld activation allocations "
                "(%.2f GiB) did not fit and took the caching pool\n",
                m.arena_bytes / 1073741824.0, m.arena_peak / 1073741824.0,
                static_cast<long long>(m.overflow_count), m.overflow_bytes / 1073741824.0);
  }
  if (!o.json_path.empty()) {
    if (absl::Status s = WriteReportJson(report, o.json_path); !s.ok()) return fail(s);
  }
  return report.ok() ? 0 : 1;
}

}  // namespace turbovid::engine::tools
