// Wan T2V / I2V-MoE pipeline over one backend (see pipeline.h).
#include "engine/pipeline/pipeline.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/comm/parallel.h"
#include "engine/core/json.h"
#include "engine/core/phase_profile.h"
#include "engine/models/dit.h"
#include "engine/models/text_encoder.h"
#include "engine/models/vae.h"
#include "engine/pipeline/activation_plan.h"
#include "engine/pipeline/conditioning.h"
#include "engine/pipeline/expert_slot.h"
#include "engine/pipeline/memory_needs.h"
#include "engine/pipeline/model_dir.h"
#include "engine/samplers/noise.h"
#include "engine/samplers/rcm.h"
#include "engine/samplers/unipc.h"
#include "engine/video/mp4_x264.h"
#include "engine/video/resize.h"
#include "engine/video/video.h"

namespace turbovid::engine {

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kLoadingModel: return "LOADING_MODEL";
    case Stage::kEncodingText: return "ENCODING_TEXT";
    case Stage::kEncodingImage: return "ENCODING_IMAGE";
    case Stage::kDenoising: return "DENOISING";
    case Stage::kDecodingVideo: return "DECODING_VIDEO";
    case Stage::kEncodingMp4: return "ENCODING_MP4";
  }
  return "?";
}

absl::Status ResolveSize(const std::string& resolution, const std::string& aspect, int* width,
                         int* height) {
  // TurboDiffusion's resolution table (docs/model-math.md §6.2), W×H.
  struct Entry {
    const char* res;
    const char* aspect;
    int w, h;
  };
  static constexpr Entry kTable[] = {
      {"480p", "16:9", 832, 480},  {"480p", "9:16", 480, 832},  {"480p", "4:3", 640, 480},
      {"480p", "3:4", 480, 640},   {"480p", "1:1", 640, 640},   {"720p", "16:9", 1280, 720},
      {"720p", "9:16", 720, 1280}, {"720p", "4:3", 960, 720},   {"720p", "3:4", 720, 960},
      {"720p", "1:1", 960, 960}};
  bool known_res = false;
  for (const Entry& e : kTable) {
    known_res = known_res || resolution == e.res;
    if (resolution == e.res && aspect == e.aspect) {
      *width = e.w;
      *height = e.h;
      return absl::OkStatus();
    }
  }
  if (!known_res) return absl::InvalidArgumentError(absl::StrCat("resolution: '", resolution, "' is not 480p or 720p"));
  return absl::InvalidArgumentError(absl::StrCat("aspect: '", aspect, "' is not 16:9, 9:16, 4:3, 3:4 or 1:1"));
}

void AdaptiveSize(int width, int height, int image_width, int image_height, int* out_width,
                  int* out_height) {
  // Keep the target area, follow the image's aspect, round to multiples of 16 (VAE 8 × patch 2).
  const double area = static_cast<double>(width) * height;
  const double aspect = static_cast<double>(image_height) / image_width;
  *out_height = std::max(16, static_cast<int>(std::lround(std::sqrt(area * aspect) / 16.0)) * 16);
  *out_width = std::max(16, static_cast<int>(std::lround(std::sqrt(area / aspect) / 16.0)) * 16);
}

namespace {

// The request's self-attention, passed to every DiT forward of the job.
DitForwardOptions ForwardOptions(const GenerateRequest& r) {
  return DitForwardOptions{r.attention, r.sla_topk, r.sagesla};
}

// The request with the backend's SageSLA build filled in where it asks for the native one.
GenerateRequest WithNativeSageSla(GenerateRequest r, const Backend& backend) {
  if (r.sagesla_native) r.sagesla = backend.native_sagesla();
  return r;
}

// x0 = x − t·v of the first latent frame: x, v [C, T, H, W] host F32 → [C, 1, H, W].
Tensor FirstFrameX0(const Tensor& x, const Tensor& v, double t) {
  const int64_t c = x.dim(0), t_frames = x.dim(1), hw = x.dim(2) * x.dim(3);
  Tensor out = Tensor::Zeros(DType::kF32, {c, 1, x.dim(2), x.dim(3)});
  const float* xp = x.data<float>();
  const float* vp = v.data<float>();
  float* o = out.data<float>();
  for (int64_t ch = 0; ch < c; ++ch) {
    const int64_t base = ch * t_frames * hw;
    for (int64_t i = 0; i < hw; ++i) {
      o[ch * hw + i] = static_cast<float>(xp[base + i] - t * static_cast<double>(vp[base + i]));
    }
  }
  return out;
}

int64_t PeakRssBytes() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// Feeds the VAE's video chunks to a video::Mp4Writer on its own thread (FIFO). Each chunk arrives
// on the backend; on the VAE's thread its I420 pictures are made there (VideoToI420Op: on a GPU
// only 1.5 bytes per pixel cross to the host instead of 12) and their download queued; chunk k's
// download is collected once chunk k+1's work is queued, so the device never waits for the host,
// and the encoder thread (x264's own threads, or NVENC) encodes chunk k while k+1 decodes. With
// `keep_frames` the chunk's RGB frames are also downloaded and kept (GenerateResult::frames).
class Mp4Encoder {
 public:
  explicit Mp4Encoder(Backend& backend) : backend_(backend) {}
  ~Mp4Encoder() {
    if (thread_.joinable()) {
      Close();
      thread_.join();
    }
  }
  // `sink` (fragmented only): each fragment's bytes, on the encoder thread, as the encoder
  // returns them.
  absl::Status Start(int64_t frames, int width, int height, bool fragmented, bool keep_frames,
                     std::function<void(const std::string&)> sink) {
    shape_ = {frames, height, width, 3};
    keep_frames_ = keep_frames;
    video::Mp4Options options;
    options.fragmented = fragmented;
    sink_ = std::move(sink);
    TV_RETURN_IF_ERROR(writer_.Open(width, height, options));
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }
  video::Mp4Encoder encoder() const { return writer_.encoder(); }
  // `chunk` [3, n, H, W] on the backend: video frames first … first+n-1 (VAE thread).
  absl::Status Push(const Tensor& chunk, int64_t first) {
    Pending next;
    next.first = first;
    TV_ASSIGN_OR_RETURN(Tensor yuv,
                        backend_.AllocateUninitialized(
                            DType::kU8, {chunk.dim(1), chunk.dim(2) * chunk.dim(3) * 3 / 2}));
    TV_RETURN_IF_ERROR(backend_.Run(VideoToI420Op{&chunk, &yuv}));
    TV_ASSIGN_OR_RETURN(next.yuv, backend_.DownloadAsync(yuv));
    if (keep_frames_) {
      TV_ASSIGN_OR_RETURN(next.video, backend_.DownloadAsync(chunk));
    }
    if (pending_.yuv) TV_RETURN_IF_ERROR(Collect());
    pending_ = std::move(next);
    return absl::OkStatus();
  }
  // The MP4 bytes; `frames` gets every frame [F, H, W, 3] U8 when kept. `tail_seconds`: from the
  // last chunk's pictures on the host to the MP4 finished (the encode the decode did not hide).
  absl::StatusOr<std::string> Finish(Tensor* frames, double* tail_seconds) {
    absl::Status collected = pending_.yuv ? Collect() : absl::OkStatus();
    const auto t0 = std::chrono::steady_clock::now();
    Close();
    thread_.join();
    TV_RETURN_IF_ERROR(collected);
    TV_RETURN_IF_ERROR(status_);
    if (keep_frames_) {
      if (!frames_.defined()) return absl::InternalError("mp4: the VAE produced no frames");
      *frames = frames_;
    }
    TV_ASSIGN_OR_RETURN(std::string mp4, writer_.Finish());
    if (sink_) TV_RETURN_IF_ERROR(Hand(writer_.TakeFragment()));
    *tail_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return mp4;
  }

 private:
  struct Pending {
    std::unique_ptr<PendingDownload> yuv, video;
    int64_t first = 0;
  };
  struct Chunk {
    Tensor yuv;  // [n, H·W·3/2] U8
    Tensor rgb;  // [n, H, W, 3] U8 (keep_frames) or undefined
    int64_t first;
  };
  // Waits for the pending chunk's downloads and hands it to the encoder thread (VAE thread).
  absl::Status Collect() {
    Pending p = std::move(pending_);
    pending_ = Pending();
    Chunk c{Tensor(), Tensor(), p.first};
    TV_ASSIGN_OR_RETURN(c.yuv, p.yuv->Wait());
    if (p.video) {
      TV_ASSIGN_OR_RETURN(Tensor video, p.video->Wait());
      c.rgb = video::VideoToFrames(video);
    }
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(c));
    cv_.notify_one();
    return absl::OkStatus();
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_one();
  }
  void Loop() {
    for (;;) {
      Chunk next;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;
        next = std::move(queue_.front());
        queue_.pop_front();
      }
      if (status_.ok()) status_ = Add(next);
    }
  }
  absl::Status Add(const Chunk& c) {
    const int64_t n = c.yuv.dim(0);
    if (c.first < 0 || c.first + n > shape_[0]) {
      return absl::InternalError(absl::StrCat("mp4: chunk of ", n, " frames at ", c.first,
                                              " outside ", shape_[0], " frames"));
    }
    if (c.rgb.defined()) {
      if (!frames_.defined()) frames_ = Tensor::Zeros(DType::kU8, shape_);
      Tensor dst = frames_.Slice0(c.first, c.first + n);
      std::memcpy(dst.raw(), c.rgb.raw(), c.rgb.nbytes());
    }
    TV_RETURN_IF_ERROR(writer_.AddI420(c.yuv));
    if (sink_) TV_RETURN_IF_ERROR(Hand(writer_.TakeFragment()));
    return absl::OkStatus();
  }
  absl::Status Hand(absl::StatusOr<std::string> piece) {
    TV_RETURN_IF_ERROR(piece.status());
    if (!piece->empty()) sink_(*piece);
    return absl::OkStatus();
  }

  Backend& backend_;
  Shape shape_;
  bool keep_frames_ = true;
  Pending pending_;  // the chunk whose downloads are in flight (VAE thread)
  Tensor frames_;    // [F, H, W, 3] U8, allocated by the encoder thread
  video::Mp4Writer writer_;
  std::function<void(const std::string&)> sink_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  bool closed_ = false;
  absl::Status status_;  // written by the encoder thread only, read after join
};

class WanPipeline : public Pipeline {
 public:
  WanPipeline(Backend& backend, ModelDir dir, const comm::ParallelGroups* parallel,
              const PipelineOptions& options)
      : backend_(backend), dir_(std::move(dir)), parallel_(parallel), options_(options) {}

  // Loads the umT5, the VAE and the experts, measuring each one's device bytes (the memory plan's
  // weights). Under a memory budget, two experts that do not fit beside each other and the rest
  // start in the streamed residency (docs/memory.md §4): each is loaded alone, pinned, and the
  // first one is kept as the device slot.
  absl::Status LoadModels() {
    const auto in_use = [this] { return backend_.memory_stats().in_use; };
    int64_t before = in_use();
    TV_ASSIGN_OR_RETURN(text_, TextEncoder::Load(dir_.path, backend_));
    text_bytes_ = in_use() - before;
    before = in_use();
    TV_ASSIGN_OR_RETURN(io::WeightSet vae_weights, io::WeightSet::Load(dir_.vae_path));
    TV_ASSIGN_OR_RETURN(vae_, WanVae::Load(dir_.vae, vae_weights, backend_, /*encoder=*/dir_.i2v,
                                           /*decoder=*/true));
    vae_bytes_ = in_use() - before;
    const int64_t budget = backend_.memory_limit();
    const bool two = dir_.dit_dirs.size() > 1;
    for (size_t e = 0; e < dir_.dit_dirs.size(); ++e) {
      TV_ASSIGN_OR_RETURN(io::WeightSet weights, io::WeightSet::Load(dir_.dit_dirs[e]));
      TV_ASSIGN_OR_RETURN(DitConfig config, LoadDitConfig(dir_.dit_dirs[e], weights));
      // Kept for reloads (residency changes) only under a budget: a .pth set may be heap memory.
      expert_weights_.push_back(budget > 0 && two ? weights : io::WeightSet());
      expert_configs_.push_back(config);
      if (two && e == 1 && budget > 0 && in_use() + expert_bytes_[0] > budget) {
        // The second expert cannot sit beside the first: pin the first, load the second in its
        // place, pin it, and reload the first as the slot.
        TV_ASSIGN_OR_RETURN(WeightGroups pinned0, PinWeights(backend_, experts_[0]->WeightGroups()));
        TV_RETURN_IF_ERROR(backend_.Synchronize());
        experts_.clear();
        before = in_use();
        TV_ASSIGN_OR_RETURN(auto dit1, LoadExpert(1));
        expert_bytes_.push_back(in_use() - before);
        TV_ASSIGN_OR_RETURN(WeightGroups pinned1, PinWeights(backend_, dit1->WeightGroups()));
        dit1.reset();
        TV_RETURN_IF_ERROR(backend_.Synchronize());
        TV_ASSIGN_OR_RETURN(auto dit0, LoadExpert(0));
        experts_.push_back(std::move(dit0));
        pinned_ = {std::move(pinned0), std::move(pinned1)};
        TV_RETURN_IF_ERROR(slot_.Init(backend_, experts_[0]->WeightGroups(), pinned_, 0));
        break;
      }
      before = in_use();
      DitOptions options;
      options.parallel = parallel_;
      options.fp8_linears = options_.fp8_linears;
      TV_ASSIGN_OR_RETURN(auto dit, WanDit::Load(config, weights, backend_, options));
      expert_bytes_.push_back(in_use() - before);
      experts_.push_back(std::move(dit));
    }
    return absl::OkStatus();
  }

  bool is_i2v() const override { return dir_.i2v; }
  absl::Status Validate(const GenerateRequest& r) const override;
  absl::StatusOr<MemoryPlan> PlanMemory(const GenerateRequest& r) const override;
  absl::StatusOr<MemoryNeeds> MemoryNeedsOf(const GenerateRequest& r) const override;

  absl::StatusOr<GenerateResult> Generate(const GenerateRequest& request, const ProgressFn& progress,
                                          const CancelFn& cancel, bool encode_mp4) override;

 private:
  absl::StatusOr<Tensor> EncodeImage(const GenerateRequest& r, int* width, int* height,
                                     const ProgressFn& progress) const;
  // The PNG of Progress::preview_png from a step's x0 of the first latent frame [C, 1, H, W].
  absl::StatusOr<std::string> PreviewPng(const Tensor& x0_first_frame, int max_width) const;
  absl::StatusOr<Tensor> Sample(const GenerateRequest& r, NoiseStreams& noise,
                                const Tensor& context, const Tensor* negative_prompt,
                                const Tensor* y, const ProgressFn& progress,
                                const CancelFn& cancel) const;
  // The latent's noise draws (streams 0 … count-1), prefetched on device backends.
  std::unique_ptr<NoiseStreams> StartNoise(const GenerateRequest& r, int width, int height) const;
  absl::StatusOr<std::string> DecodeVideo(const GenerateRequest& r, const Tensor& latent, int width,
                                          int height, bool encode_mp4, const ProgressFn& progress,
                                          Tensor* frames, comm::Communicator* split,
                                          std::string* mp4_encoder, double* tail_seconds) const;
  // The group that splits the decode of `latent` by rows, or null (rank 0 decodes alone). A
  // one-rank group passes itself only with collectives_at_one_rank (its gathers then run).
  comm::Communicator* DecodeSplit(const Tensor& latent) const {
    if (!options_.split_vae_decode || parallel_ == nullptr) return nullptr;
    comm::Communicator& world = parallel_->world();
    if (world.size() == 1) return parallel_->layout().collectives_at_one_rank ? &world : nullptr;
    return latent.dim(2) >= world.size() ? &world : nullptr;
  }
  // Whether to stop now: `cancel` asked on world rank 0 and its answer broadcast, so that every
  // rank stops at the same check (a rank that stopped alone would leave the others waiting).
  absl::StatusOr<bool> CancelRequested(const CancelFn& cancel) const;
  bool leader() const { return parallel_ == nullptr || parallel_->world().rank() == 0; }
  // Expert e from its kept weight set (a fresh device copy).
  absl::StatusOr<std::unique_ptr<WanDit>> LoadExpert(size_t e) const {
    io::WeightSet weights = expert_weights_[e];  // Load takes tensors out of its set
    DitOptions options;
    options.parallel = parallel_;
    options.fp8_linears = options_.fp8_linears;
    return WanDit::Load(expert_configs_[e], weights, backend_, options);
  }
  // Whether the experts share one device slot now (docs/memory.md §4).
  bool streamed() const { return dir_.dit_dirs.size() > 1 && experts_.size() == 1; }
  // Puts the experts in the plan's residency: drops the second expert's device copy (pinning
  // both first, once), or reloads it and brings the first back into the slot.
  absl::Status ApplyResidency(ExpertResidency residency);

  std::vector<int64_t> expert_bytes_;  // measured device bytes of each expert's weights
  int64_t text_bytes_ = 0;
  int64_t vae_bytes_ = 0;
  std::vector<io::WeightSet> expert_weights_;
  std::vector<DitConfig> expert_configs_;
  std::vector<WeightGroups> pinned_;  // [expert]: pinned host bytes, once streamed
  mutable ExpertSlot slot_;

  Backend& backend_;
  ModelDir dir_;
  const comm::ParallelGroups* parallel_;  // null: one rank
  PipelineOptions options_;
  std::unique_ptr<TextEncoder> text_;
  std::vector<std::unique_ptr<WanDit>> experts_;  // [high, low] for I2V-MoE
  std::unique_ptr<WanVae> vae_;
};

absl::Status WanPipeline::Validate(const GenerateRequest& r) const {
  if (r.prompt.empty()) return absl::InvalidArgumentError("prompt: must not be empty");
  if (r.frames < 1 || (r.frames - 1) % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("frames: ", r.frames, " is not 4k+1"));
  }
  if (r.width < 16 || r.width % 16 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("width: ", r.width, " is not a positive multiple of 16"));
  }
  if (r.height < 16 || r.height % 16 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("height: ", r.height, " is not a positive multiple of 16"));
  }
  if (r.sampler == SamplerKind::kRcm && (r.steps < 1 || r.steps > 4)) {
    return absl::InvalidArgumentError(absl::StrCat("steps: ", r.steps, " is outside [1, 4] for rCM"));
  }
  if (r.sampler == SamplerKind::kUniPc && (r.steps < 1 || r.steps > 200)) {
    return absl::InvalidArgumentError(absl::StrCat("steps: ", r.steps, " is outside [1, 200]"));
  }
  if (dir_.i2v && r.image_bytes.empty()) return absl::InvalidArgumentError("image: required by this I2V model");
  if (!dir_.i2v && !r.image_bytes.empty()) return absl::InvalidArgumentError("image: this model is text-to-video");
  if (r.attention != AttentionMode::kDense && !(r.sla_topk > 0.f && r.sla_topk <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("sla_topk: ", r.sla_topk, " is outside (0, 1]"));
  }
  if (r.preview_width != 0 && (r.preview_width < 16 || r.preview_width > 512)) {
    return absl::InvalidArgumentError(
        absl::StrCat("preview_width: ", r.preview_width, " is outside 16..512 (0 = no previews)"));
  }
  // Unsupported modes (SLA on a dense-only checkpoint) fail here, before any work.
  for (const auto& dit : experts_) TV_RETURN_IF_ERROR(dit->CheckForwardOptions(ForwardOptions(r)));
  return absl::OkStatus();
}

absl::StatusOr<MemoryNeeds> WanPipeline::MemoryNeedsOf(const GenerateRequest& r) const {
  TV_RETURN_IF_ERROR(Validate(r));
  TV_ASSIGN_OR_RETURN(ActivationModels models, PlannedModels(dir_, *experts_.front()));
  return JobMemoryNeeds(models, PlannedJob(dir_, r, backend_), expert_bytes_, text_bytes_, vae_bytes_);
}

absl::StatusOr<MemoryPlan> WanPipeline::PlanMemory(const GenerateRequest& r) const {
  TV_ASSIGN_OR_RETURN(const MemoryNeeds needs, MemoryNeedsOf(r));
  return engine::PlanMemory(needs, backend_.memory_limit());
}

absl::Status WanPipeline::ApplyResidency(ExpertResidency residency) {
  if (dir_.dit_dirs.size() < 2) return absl::OkStatus();
  if (residency == ExpertResidency::kStreamInactive && !streamed()) {
    if (pinned_.empty()) {
      for (const auto& dit : experts_) {
        TV_ASSIGN_OR_RETURN(WeightGroups pinned, PinWeights(backend_, dit->WeightGroups()));
        pinned_.push_back(std::move(pinned));
      }
    }
    TV_RETURN_IF_ERROR(backend_.Synchronize());
    experts_.resize(1);
    return slot_.Init(backend_, experts_[0]->WeightGroups(), pinned_, 0);
  }
  if (residency == ExpertResidency::kAllResident && streamed()) {
    TV_RETURN_IF_ERROR(slot_.Prepare(0));
    TV_RETURN_IF_ERROR(slot_.WaitAll());
    TV_RETURN_IF_ERROR(backend_.Synchronize());
    slot_.Reset();
    TV_ASSIGN_OR_RETURN(auto dit1, LoadExpert(1));
    experts_.push_back(std::move(dit1));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> WanPipeline::EncodeImage(const GenerateRequest& r, int* width, int* height,
                                                const ProgressFn& progress) const {
  if (progress) progress({Stage::kEncodingImage, 0, r.steps, 0});
  TV_ASSIGN_OR_RETURN(Tensor rgb, video::DecodeImage(r.image_bytes, "image"));
  if (r.adapt_size_to_image) {
    AdaptiveSize(r.width, r.height, static_cast<int>(rgb.dim(1)), static_cast<int>(rgb.dim(0)),
                 width, height);
  } else {
    *width = r.width;
    *height = r.height;
  }
  // TurboDiffusion's preprocessing (docs/model-math.md §6.3): antialiased bilinear resize of the
  // uint8 image, then [0, 255] → [-1, 1] in fp32.
  TV_ASSIGN_OR_RETURN(Tensor resized, video::ResizeAntialiasBilinear(rgb, *width, *height));
  TV_ASSIGN_OR_RETURN(Tensor image, video::ImageToSignedUnit(resized));  // [3, h, w] F32
  // Pixel video [3, F, h, w]: the image in frame 0, zeros after it.
  const int64_t hw = int64_t{*width} * *height;
  Tensor pixels = Tensor::Zeros(DType::kF32, {3, r.frames, *height, *width});
  for (int64_t c = 0; c < 3; ++c) {
    std::memcpy(pixels.data<float>() + c * r.frames * hw, image.data<float>() + c * hw,
                hw * sizeof(float));
  }
  TV_ASSIGN_OR_RETURN(Tensor latent, vae_->Encode(pixels));
  // The sampler script feeds bf16(latent) into y (docs/model-math.md §6.3).
  for (int64_t i = 0; i < latent.numel(); ++i) latent.data<float>()[i] = RoundToBf16(latent.data<float>()[i]);
  if (progress) progress({Stage::kEncodingImage, 0, r.steps, 1});
  return I2vCondition(latent);
}

std::unique_ptr<NoiseStreams> WanPipeline::StartNoise(const GenerateRequest& r, int width,
                                                      int height) const {
  const Shape latent_shape = {16, (r.frames - 1) / 4 + 1, height / 8, width / 8};
  // rCM SDE: stream 0 and the fresh draws after steps 0 … N-2 (the last step's weight is 0).
  const int count = r.sampler == SamplerKind::kRcm && !r.ode ? r.steps : 1;
  return std::make_unique<NoiseStreams>(latent_shape, r.seed, count,
                                        /*background=*/backend_.device() != Device::kCpu);
}

absl::StatusOr<std::string> WanPipeline::PreviewPng(const Tensor& x0_first_frame,
                                                    int max_width) const {
  TV_ASSIGN_OR_RETURN(Tensor video, vae_->Decode(x0_first_frame));  // [3, 1, 8H, 8W]
  const Tensor frames = video::VideoToFrames(video);                 // [1, 8H, 8W, 3] U8
  const int h = static_cast<int>(frames.dim(1)), w = static_cast<int>(frames.dim(2));
  TV_ASSIGN_OR_RETURN(Tensor rgb, frames.Reshape({h, w, 3}));
  if (w > max_width) {
    const int out_h =
        std::max(1, static_cast<int>(std::lround(static_cast<double>(h) * max_width / w)));
    TV_ASSIGN_OR_RETURN(rgb, video::ResizeAntialiasBilinear(rgb, max_width, out_h));
  }
  return video::EncodePng(rgb);
}

absl::StatusOr<Tensor> WanPipeline::Sample(const GenerateRequest& r, NoiseStreams& noise_streams,
                                           const Tensor& context,
                                           const Tensor* negative_prompt, const Tensor* y,
                                           const ProgressFn& progress,
                                           const CancelFn& cancel) const {
  // Streamed residency: the slot model runs every expert, each forward (and context
  // preparation) waiting for a weight group's upload just before the group is used.
  const bool stream = streamed();
  const std::function<absl::Status(int)> wait_group = [this](int g) { return slot_.Wait(g); };
  const std::function<absl::Status(int)>* hook = stream ? &wait_group : nullptr;
  DitForwardOptions attention = ForwardOptions(r);
  attention.before_group = hook;
  const size_t num_experts = dir_.dit_dirs.size();
  // Expert e's model, its weights in place (queued) when streamed.
  auto model = [&](size_t e) -> absl::StatusOr<const WanDit*> {
    if (!stream) return experts_[e].get();
    TV_RETURN_IF_ERROR(slot_.Prepare(static_cast<int>(e)));
    return experts_[0].get();
  };
  // Each expert's text context, prepared when the expert first runs (with its own weights).
  std::vector<std::optional<WanDit::Context>> contexts(num_experts), uncond(num_experts);
  auto context_of = [&](size_t e, const WanDit& dit, const Tensor& text,
                        std::vector<std::optional<WanDit::Context>>& cache)
      -> absl::StatusOr<const WanDit::Context*> {
    if (!cache[e]) {
      TV_ASSIGN_OR_RETURN(WanDit::Context ctx, dit.PrepareContext(text, hook));
      cache[e] = std::move(ctx);
    }
    return &*cache[e];
  };
  // Resident experts: every context now, as the activation plan assumes (both live through the
  // DiT stage). Streamed: each when its expert first runs, with that expert's weights in place.
  if (!stream) {
    for (size_t e = 0; e < num_experts; ++e) {
      TV_RETURN_IF_ERROR(context_of(e, *experts_[e], context, contexts).status());
      if (negative_prompt != nullptr) {
        TV_RETURN_IF_ERROR(context_of(e, *experts_[e], *negative_prompt, uncond).status());
      }
    }
  }
  // With previews: the step's x0 prediction of the first latent frame, set by the velocity call.
  const bool preview = progress && r.preview_width > 0;
  Tensor preview_x0;
  auto keep_x0 = [&](const Tensor& x, const Tensor& v, double t) {
    if (preview) preview_x0 = FirstFrameX0(x, v, t);
  };
  auto on_step = [&](int step) -> absl::Status {
    if (progress) {
      Progress p{Stage::kDenoising, step + 1, r.steps, (step + 1.0) / r.steps};
      if (preview && preview_x0.defined()) {
        TV_ASSIGN_OR_RETURN(p.preview_png, PreviewPng(preview_x0, r.preview_width));
      }
      progress(p);
    }
    TV_ASSIGN_OR_RETURN(const bool stop, CancelRequested(cancel));
    if (stop) return absl::CancelledError(absl::StrCat("cancelled after step ", step + 1));
    return absl::OkStatus();
  };
  const Tensor noise = noise_streams.Get(0);
  ProfileMark("noise: initial draw (wait)");
  if (r.sampler == SamplerKind::kRcm) {
    RcmOptions options;
    options.steps = r.steps;
    options.sigma_max = r.sigma_max > 0 ? r.sigma_max : (dir_.i2v ? 200 : 80);
    options.ode = r.ode;
    options.boundary = num_experts > 1 ? dir_.boundary : -1;
    return RcmSample(
        noise, options,
        [&](const Tensor& x_in, float t, bool low) -> absl::StatusOr<Tensor> {
          const size_t e = low && num_experts > 1 ? 1 : 0;
          TV_ASSIGN_OR_RETURN(const WanDit* dit, model(e));
          TV_ASSIGN_OR_RETURN(const WanDit::Context* ctx, context_of(e, *dit, context, contexts));
          TV_ASSIGN_OR_RETURN(Tensor v, dit->Forward(x_in, y, t, *ctx, attention));
          keep_x0(x_in, v, t / 1000.0);
          return v;
        },
        [&](int step) { return noise_streams.Get(1 + step); }, on_step);
  }
  // UniPC + classifier-free guidance with the negative prompt (encoded by Generate).
  if (negative_prompt == nullptr) return absl::InternalError("unipc: no negative prompt context");
  const Tensor& negative = *negative_prompt;
  const int boundary_t = static_cast<int>(dir_.boundary * 1000);
  return UniPcSample(
      noise, r.steps, r.shift,
      [&](const Tensor& x, int t, int) -> absl::StatusOr<Tensor> {
        const size_t e = num_experts > 1 && t < boundary_t ? 1 : 0;
        TV_ASSIGN_OR_RETURN(const WanDit* dit, model(e));
        TV_ASSIGN_OR_RETURN(const WanDit::Context* c, context_of(e, *dit, context, contexts));
        TV_ASSIGN_OR_RETURN(const WanDit::Context* u, context_of(e, *dit, negative, uncond));
        TV_ASSIGN_OR_RETURN(Tensor vc, dit->Forward(x, y, t, *c, attention));
        TV_ASSIGN_OR_RETURN(Tensor vu, dit->Forward(x, y, t, *u, attention));
        for (int64_t i = 0; i < vc.numel(); ++i) {
          float& c = vc.data<float>()[i];
          const float u = vu.data<float>()[i];
          c = u + static_cast<float>(r.guide_scale) * (c - u);
        }
        keep_x0(x, vc, t / 1000.0);
        return vc;
      },
      on_step);
}

absl::StatusOr<std::string> WanPipeline::DecodeVideo(const GenerateRequest& r, const Tensor& latent,
                                                     int width, int height, bool encode_mp4,
                                                     const ProgressFn& progress, Tensor* frames,
                                                     comm::Communicator* split,
                                                     std::string* mp4_encoder,
                                                     double* tail_seconds) const {
  // With libx264 the MP4 is encoded while the VAE decodes: each latent frame's video frames go to
  // an encoder thread as soon as they reach the host; the bytes are ready right after the decode.
  // Progressive output (fragmented_mp4): each chunk's frames also leave as an MP4 fragment.
  const bool stream_mp4 = encode_mp4 && video::internal::HaveX264();
  const bool progressive = encode_mp4 && r.fragmented_mp4 && r.on_mp4_bytes;
  Mp4Encoder encoder(backend_);
  if (stream_mp4) {
    TV_RETURN_IF_ERROR(encoder.Start(1 + 4 * (latent.dim(1) - 1), width, height, progressive,
                                     r.return_frames, progressive ? r.on_mp4_bytes : nullptr));
    *mp4_encoder = video::Mp4EncoderName(encoder.encoder());
  }
  auto on_frame = [&](int i, int n) {
    if (progress) progress({Stage::kDecodingVideo, 0, r.steps, (i + 1.0) / n});
  };
  WanVae::ChunkFn on_chunk;
  if (stream_mp4) {
    on_chunk = [&](const Tensor& chunk, int64_t first) { return encoder.Push(chunk, first); };
  }
  TV_ASSIGN_OR_RETURN(Tensor video, vae_->Decode(latent, on_frame, on_chunk, split));
  ProfileMark("vae: decode, I420 on the backend (MP4 encoder thread beside it)");
  std::string mp4;
  if (stream_mp4) {
    if (progress) progress({Stage::kEncodingMp4, 0, r.steps, 0});
    TV_ASSIGN_OR_RETURN(mp4, encoder.Finish(frames, tail_seconds));
    if (progress) progress({Stage::kEncodingMp4, 0, r.steps, 1});
    // The tail: the last chunk's download, then the encode wait after it (docs/design.md §10.5).
    ProfileMark("mp4: last chunk's download + encoder tail");
    return mp4;
  }
  *frames = video::VideoToFrames(video);
  if (encode_mp4) {
    if (progress) progress({Stage::kEncodingMp4, 0, r.steps, 0});
    const auto t0 = std::chrono::steady_clock::now();
    video::Mp4Options options;
    TV_ASSIGN_OR_RETURN(const video::Mp4Encoder e,
                        video::internal::ResolveMp4Encoder(options, video::Mp4Encoder::kFfmpeg));
    *mp4_encoder = video::Mp4EncoderName(e);
    TV_ASSIGN_OR_RETURN(mp4, video::EncodeMp4(*frames));
    *tail_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress({Stage::kEncodingMp4, 0, r.steps, 1});
    if (progressive) r.on_mp4_bytes(mp4);  // no libx264: the whole file at once
  }
  ProfileMark("frames + mp4 (after the decode)");
  return mp4;
}

absl::StatusOr<bool> WanPipeline::CancelRequested(const CancelFn& cancel) const {
  const bool mine = leader() && cancel && cancel();
  if (parallel_ == nullptr ||
      (parallel_->world().size() == 1 && !parallel_->layout().collectives_at_one_rank)) {
    return mine;
  }
  Tensor flag = Tensor::Zeros(DType::kF32, {1});
  flag.data<float>()[0] = mine ? 1.f : 0.f;
  TV_ASSIGN_OR_RETURN(Tensor dev, backend_.Upload(flag, DType::kF32));
  TV_RETURN_IF_ERROR(parallel_->world().Broadcast(dev, 0));
  TV_ASSIGN_OR_RETURN(Tensor host, backend_.Download(dev));
  return host.data<float>()[0] != 0.f;
}

absl::StatusOr<GenerateResult> WanPipeline::Generate(const GenerateRequest& request_in,
                                                     const ProgressFn& caller_progress,
                                                     const CancelFn& cancel, bool encode_mp4) {
  const GenerateRequest request = WithNativeSageSla(request_in, backend_);
  // Admission: validation, then the memory plan (a job no plan fits is refused here).
  TV_ASSIGN_OR_RETURN(const MemoryPlan plan, PlanMemory(request));
  // Progress comes from world rank 0 alone (the worker group's leader reports it).
  const ProgressFn progress = leader() ? caller_progress : ProgressFn();
  std::optional<PhaseProfile> profile;
  if (PhaseProfile::Enabled()) profile.emplace([this] { (void)backend_.Synchronize(); });
  ScopedPhaseProfile scoped_profile(profile ? &*profile : nullptr);
  TV_RETURN_IF_ERROR(ApplyResidency(plan.experts));
  // Streamed: the first expert's upload (if the slot holds the other) overlaps the text encoder.
  if (streamed()) TV_RETURN_IF_ERROR(slot_.Prepare(0));
  backend_.ResetPeakMemory();  // the job's own peak (weights stay resident and count in it)
  // One activation arena per job, sized from its shape (no-op on the CPU backend).
  TV_RETURN_IF_ERROR(ReserveJobActivations(backend_, dir_, *experts_.front(), request));
  int width = request.width, height = request.height;
  // T2V knows the latent size now: its noise draws overlap the text encoder (device backends).
  std::unique_ptr<NoiseStreams> noise;
  if (!dir_.i2v) noise = StartNoise(request, width, height);
  ProfileMark("pipeline: reserve activations, start noise");
  if (progress) progress({Stage::kEncodingText, 0, request.steps, 0});
  TV_ASSIGN_OR_RETURN(Tensor context, text_->Encode(request.prompt));
  // UniPC + classifier-free guidance: the negative prompt (default: Wan's), while umT5 is here.
  std::optional<Tensor> negative;
  if (request.sampler == SamplerKind::kUniPc) {
    TV_ASSIGN_OR_RETURN(negative, text_->Encode(request.negative_prompt.empty()
                                                    ? std::string(kWanNegativePrompt)
                                                    : request.negative_prompt));
  }
  // Offloaded umT5 (docs/memory.md §3): off the device until the next prompt-cache miss.
  if (plan.text == TextResidency::kOffloadAfterEncode) {
    TV_RETURN_IF_ERROR(backend_.Synchronize());
    text_->Offload();
  }
  ProfileMark("text: umT5 encode (or prompt cache hit)");
  // The DiT receives bf16(context) as upstream feeds it.
  for (int64_t i = 0; i < context.numel(); ++i) context.data<float>()[i] = RoundToBf16(context.data<float>()[i]);
  std::optional<Tensor> y;
  if (dir_.i2v) {
    TV_ASSIGN_OR_RETURN(y, EncodeImage(request, &width, &height, progress));
    noise = StartNoise(request, width, height);
    ProfileMark("image: decode, resize, VAE encode");
  }
  TV_ASSIGN_OR_RETURN(const bool stop, CancelRequested(cancel));
  if (stop) return absl::CancelledError("cancelled before denoising");
  if (progress) progress({Stage::kDenoising, 0, request.steps, 0});
  TV_ASSIGN_OR_RETURN(Tensor latent,
                      Sample(request, *noise, context, negative ? &*negative : nullptr,
                             y ? &*y : nullptr, progress, cancel));
  noise.reset();
  GenerateResult result;
  // Every rank holds the same latent; all ranks decode it split by rows, or rank 0 alone
  // (docs/parallelism.md §4). Rank 0 gets the video.
  comm::Communicator* split = DecodeSplit(latent);
  if (!leader()) {
    if (split != nullptr) TV_RETURN_IF_ERROR(vae_->Decode(latent, {}, {}, split).status());
    return result;
  }
  if (progress) progress({Stage::kDecodingVideo, 0, request.steps, 0});
  TV_ASSIGN_OR_RETURN(
      result.mp4, DecodeVideo(request, latent, width, height, encode_mp4, progress, &result.frames,
                              split, &result.mp4_encoder, &result.mp4_tail_seconds));
  // Progressive: a cancel that came while the fragments were streaming wins over the finished
  // file (its readers were told already). Rank 0's own check: the other ranks are done.
  if (request.fragmented_mp4 && cancel && cancel()) {
    return absl::CancelledError("cancelled while the video was decoding");
  }
  // Device backends report their device peak (weights + the job's activations); the CPU backend
  // the process's peak RSS.
  result.accounted_peak_bytes = backend_.memory_stats().peak;
  result.peak_bytes = backend_.device() != Device::kCpu || backend_.memory_limit() > 0
                          ? result.accounted_peak_bytes
                          : PeakRssBytes();
  result.memory_plan = plan;
  if (profile) {
    profile->Print(stderr, absl::StrCat("pipeline profile: ", width, "x", height, ", ",
                                        request.frames, " frames, ", request.steps, " steps, ",
                                        AttentionModeName(request.attention)));
  }
  return result;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Load(const std::string& model_dir,
                                                         Backend& backend,
                                                         const comm::ParallelGroups* parallel,
                                                         const PipelineOptions& options) {
  TV_ASSIGN_OR_RETURN(ModelDir dir, ModelDir::Open(model_dir));
  auto pipeline = std::make_unique<WanPipeline>(backend, std::move(dir), parallel, options);
  TV_RETURN_IF_ERROR(pipeline->LoadModels());
  return std::unique_ptr<Pipeline>(std::move(pipeline));
}

}  // namespace turbovid::engine
