// T2V and I2V pipelines: prompt (+ image) → text encoder → DiT sampling (rCM or UniPC, Wan2.2
// expert switch) → VAE decode → frames → MP4. Progress per stage and step; cancellation
// between steps. This is the API the worker and `turbovid-engine generate` use.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/memory_plan.h"
#include "engine/core/tensor.h"
#include "engine/models/attention_mode.h"

namespace turbovid::engine {
namespace comm {
class ParallelGroups;
}  // namespace comm

enum class Stage : uint8_t {
  kLoadingModel,
  kEncodingText,
  kEncodingImage,
  kDenoising,
  kDecodingVideo,
  kEncodingMp4,
};
const char* StageName(Stage stage);

struct Progress {
  Progress() = default;
  Progress(Stage stage_in, int step_in, int num_steps_in, double fraction_in)
      : stage(stage_in), step(step_in), num_steps(num_steps_in), fraction(fraction_in) {}

  Stage stage = Stage::kLoadingModel;
  int step = 0;       // 1-based denoising step during kDenoising (0 otherwise)
  int num_steps = 0;  // denoising steps of the job
  double fraction = 0;  // progress inside the stage, [0, 1]
  // kDenoising with GenerateRequest::preview_width > 0: the step's preview, a PNG of the first
  // video frame decoded from the step's predicted clean latent (x0 = x − t·v), at most
  // preview_width pixels wide. Empty otherwise.
  std::string preview_png;
};
using ProgressFn = std::function<void(const Progress&)>;
using CancelFn = std::function<bool()>;  // true → stop at the next check (Cancelled)

enum class SamplerKind : uint8_t { kRcm, kUniPc };

struct GenerateRequest {
  std::string prompt;
  std::string negative_prompt;  // UniPC + CFG only; empty → Wan's default negative prompt
  std::string image_bytes;      // I2V conditioning image (encoded), empty for T2V
  int frames = 81;              // 4k + 1
  int width = 832;              // multiple of 16
  int height = 480;             // multiple of 16
  // I2V: true = (width, height) give the area and the image gives the aspect (AdaptiveSize);
  // false = render at width x height as given (the scheduler resolved the size already).
  bool adapt_size_to_image = true;
  int steps = 4;
  uint64_t seed = 0;
  AttentionMode attention = AttentionMode::kDense;  // self-attention of every DiT forward
  float sla_topk = 0.1f;  // SLA: fraction of key blocks kept per query block, (0, 1]
  SageSlaVariant sagesla = SageSlaVariant::kSm90;  // SageSLA: the upstream build's numerics
  bool sagesla_native = false;  // true: the backend's own build (Backend::native_sagesla)
  SamplerKind sampler = SamplerKind::kRcm;
  bool ode = false;             // rCM: Euler ODE instead of the default SDE update
  double sigma_max = 0;         // rCM: 0 → 80 (T2V) / 200 (I2V)
  double guide_scale = 5.0;     // UniPC + CFG
  double shift = 5.0;           // UniPC schedule shift
  // > 0: a preview PNG per denoising step in Progress::preview_png (at most this many pixels
  // wide, 16..512): the VAE decodes the first latent frame of the step's x0 prediction (on a
  // GPU about 1/21 of the job's decode per step).
  int preview_width = 0;
  // Progressive output (docs/design.md §10.4): with encode_mp4 the MP4 is fragmented (ftyp +
  // moov, then one moof + mdat per latent frame the VAE decodes) and `on_mp4_bytes` receives its
  // bytes in order as each fragment is encoded, on the encoder thread, the first piece (ftyp,
  // moov and the first fragment) right after the first latent frame is decoded. The pieces
  // concatenated are GenerateResult::mp4. A build without libx264 hands over the whole
  // (unfragmented) file once it is encoded. A cancel that comes during the decode is honoured
  // after it (Cancelled), not only between denoising steps.
  bool fragmented_mp4 = false;
  std::function<void(const std::string& bytes)> on_mp4_bytes;
  // GenerateResult::frames wanted. false (the worker, the bench): with encode_mp4 only the I420
  // pictures the encoder takes leave the device (1.5 bytes per pixel instead of 12 for the
  // video and 3 more for RGB frames) and `frames` stays empty.
  bool return_frames = true;
};

struct GenerateResult {
  Tensor frames;     // [F, H, W, 3] U8 (empty when the MP4 streamed and !return_frames)
  std::string mp4;   // MP4 bytes (empty if not asked for)
  // The H.264 encoder that wrote `mp4`: "x264" (libx264 directly), "nvenc" (FFmpeg's h264_nvenc)
  // or "ffmpeg" (FFmpeg's libx264); chosen automatically (video::Mp4Encoder::kAuto: NVENC where
  // the GPU has it) unless TV_MP4_ENCODER names one. Empty without an MP4.
  std::string mp4_encoder;
  // The MP4's tail: seconds from the last decoded chunk's pictures on the host to the finished
  // MP4 (the encode that the decode did not hide; with no streaming encoder, the whole encode).
  double mp4_tail_seconds = 0;
  // Device peak of this job (CPU backend: process peak RSS, or with a memory budget the bytes
  // its allocator counted, as accounted_peak_bytes).
  int64_t peak_bytes = 0;
  // Peak of the bytes the backend's allocator counted against the memory budget (weights,
  // uploads, activations, workspaces): ≤ the budget by construction (docs/memory.md).
  int64_t accounted_peak_bytes = 0;
  MemoryPlan memory_plan;  // the residency the job ran with
};

// Resolution presets (TurboDiffusion's table) and the I2V adaptive-resolution rule.
absl::Status ResolveSize(const std::string& resolution, const std::string& aspect, int* width,
                         int* height);
// Area of (width, height), aspect of the image (h/w) → sizes rounded to multiples of 16.
void AdaptiveSize(int width, int height, int image_width, int image_height, int* out_width,
                  int* out_height);

// How a pipeline runs beside its model files.
struct PipelineOptions {
  // With a parallel group of more than one rank: the VAE decode is split by rows over the world
  // group's ranks (docs/parallelism.md §4) instead of running on rank 0 alone. A latent with
  // fewer rows than ranks decodes on rank 0 alone.
  bool split_vae_decode = true;
  // turbo-fp8: the DiT block linears quantised to FP8 e4m3 at load from the bf16 checkpoint
  // (DitOptions::fp8_linears, docs/model-math.md §11.6).
  bool fp8_linears = false;
};

class Pipeline {
 public:
  virtual ~Pipeline() = default;
  // model_dir holds the checkpoint in the official layout (see engine/README.md). With
  // `parallel` (docs/parallelism.md) this rank loads its shard of the DiT experts, and Load and
  // every Generate are collective over the groups: all ranks call them with the same request.
  // Rank 0 of the world group reports progress, decides cancellation (broadcast to the others
  // at each check) and returns the video (decoded by all ranks, split by rows, or by rank 0
  // alone: PipelineOptions::split_vae_decode); the other ranks return an empty result.
  // `parallel` must outlive the pipeline.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Load(
      const std::string& model_dir, Backend& backend,
      const comm::ParallelGroups* parallel = nullptr, const PipelineOptions& options = {});
  virtual bool is_i2v() const = 0;
  // Checks the request against this model (errors name the field), as Generate does first; a
  // parallel group checks before it starts (no collective here).
  virtual absl::Status Validate(const GenerateRequest& request) const = 0;
  // The job's memory plan (docs/memory.md) under the backend's memory budget
  // (Backend::memory_limit): which weights stay resident and each stage's peak. No plan fits →
  // ResourceExhausted naming the smallest plan's need and the budget. Validates first.
  virtual absl::StatusOr<MemoryPlan> PlanMemory(const GenerateRequest& request) const = 0;
  // What PlanMemory plans with: the loaded weights' measured device bytes and the job's stages.
  virtual absl::StatusOr<MemoryNeeds> MemoryNeedsOf(const GenerateRequest& request) const = 0;
  // Validates the request (errors name the field), plans its memory (a job that cannot fit the
  // budget is refused here, before any work), then runs it.
  virtual absl::StatusOr<GenerateResult> Generate(const GenerateRequest& request,
                                                  const ProgressFn& progress,
                                                  const CancelFn& cancel, bool encode_mp4) = 0;
};

}  // namespace turbovid::engine
