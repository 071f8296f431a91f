// Field-by-field checks in the order a client would fix them; the first failure is returned.
#include "scheduler/admission.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "scheduler/image_check.h"

namespace turbovid::scheduler {
namespace {

namespace v1 = ::turbovid::v1;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::Status CheckText(const char* field, const std::string& text, const AdmissionLimits& limits) {
  if (static_cast<int64_t>(text.size()) > limits.max_prompt_bytes) {
    return Invalid(
        absl::StrCat(field, ": ", text.size(), " bytes > limit ", limits.max_prompt_bytes));
  }
  if (text.find('\0') != std::string::npos) return Invalid(absl::StrCat(field, ": contains NUL"));
  return absl::OkStatus();
}

absl::Status ResolveSize(const v1::SubmitVideoRequest& request, const ModelSpec& model,
                         const AdmissionLimits& limits, ResolvedRequest* out) {
  const v1::VideoSize& size = request.size();
  const int w = size.width_pixels();
  const int h = size.height_pixels();
  if (w != 0 || h != 0) {
    if (w <= 0) return Invalid(absl::StrCat("size.width_pixels: ", w, " must be > 0"));
    if (h <= 0) return Invalid(absl::StrCat("size.height_pixels: ", h, " must be > 0"));
    if (w % 16 != 0) {
      return Invalid(absl::StrCat("size.width_pixels: ", w, " is not a multiple of 16"));
    }
    if (h % 16 != 0) {
      return Invalid(absl::StrCat("size.height_pixels: ", h, " is not a multiple of 16"));
    }
    out->width_pixels = w;
    out->height_pixels = h;
  } else if (!size.resolution().empty() || !size.aspect().empty()) {
    TV_RETURN_IF_ERROR(
        PresetSize(size.resolution().empty() ? model.default_resolution : size.resolution(),
                   size.aspect(), &out->width_pixels, &out->height_pixels));
  } else if (model.default_width_pixels > 0) {
    out->width_pixels = model.default_width_pixels;
    out->height_pixels = model.default_height_pixels;
  } else {
    TV_RETURN_IF_ERROR(PresetSize(model.default_resolution, model.default_aspect,
                                  &out->width_pixels, &out->height_pixels));
  }
  const int64_t pixels = int64_t{out->width_pixels} * out->height_pixels;
  if (pixels > limits.max_pixels) {
    return Invalid(absl::StrCat("size: ", out->width_pixels, "x", out->height_pixels, " = ", pixels,
                                " pixels > limit ", limits.max_pixels));
  }
  return absl::OkStatus();
}

// I2V: TurboDiffusion's adaptive size (docs/model-math.md §6.2), the rule of the engine's
// AdaptiveSize: keep the requested area, follow the image's aspect (h/w), round each side to a
// multiple of 16. Resolved here so that the job reports the size it is rendered at; the worker
// renders it as given.
absl::Status AdaptSizeToImage(const ImageInfo& image, const AdmissionLimits& limits,
                              ResolvedRequest* out) {
  const double area = static_cast<double>(out->width_pixels) * out->height_pixels;
  const double aspect = static_cast<double>(image.height) / image.width;
  const int height =
      std::max(16, static_cast<int>(std::lround(std::sqrt(area * aspect) / 16.0)) * 16);
  const int width =
      std::max(16, static_cast<int>(std::lround(std::sqrt(area / aspect) / 16.0)) * 16);
  // Rounding both sides up may pass the area a little; an extreme aspect passes it far.
  const int64_t pixels = int64_t{width} * height;
  if (pixels > limits.max_pixels + limits.max_pixels / 10) {
    return Invalid(absl::StrCat("image: its aspect (", image.width, "x", image.height, ") gives a ",
                                width, "x", height, " video = ", pixels, " pixels > limit ",
                                limits.max_pixels));
  }
  out->width_pixels = width;
  out->height_pixels = height;
  return absl::OkStatus();
}

absl::Status CheckImage(const v1::SubmitVideoRequest& request, const VariantSpec& variant,
                        const AdmissionLimits& limits, ImageInfo* image) {
  if (!variant.is_i2v) {
    if (!request.image().empty()) {
      return Invalid(absl::StrCat("image: model ", request.model_id(),
                                  " is text-to-video and takes no image"));
    }
    return absl::OkStatus();
  }
  if (request.image().empty()) {
    return Invalid(absl::StrCat("image: required by image-to-video model ", request.model_id()));
  }
  if (static_cast<int64_t>(request.image().size()) > limits.max_image_bytes) {
    return Invalid(
        absl::StrCat("image: ", request.image().size(), " bytes > limit ", limits.max_image_bytes));
  }
  TV_ASSIGN_OR_RETURN(ImageInfo info, InspectImage(request.image()));
  if (info.width > limits.max_image_side_pixels || info.height > limits.max_image_side_pixels) {
    return Invalid(absl::StrCat("image: ", info.width, "x", info.height, " exceeds ",
                                limits.max_image_side_pixels, " pixels per side"));
  }
  if (info.width < 1 || info.height < 1) {
    return Invalid(absl::StrCat("image: ", info.width, "x", info.height, " has no pixels"));
  }
  *image = info;
  return absl::OkStatus();
}

absl::StatusOr<v1::Sampler> SamplerOf(const VariantSpec& variant) {
  if (variant.sampler == "rcm") return v1::SAMPLER_RCM;
  if (variant.sampler == "unipc") return v1::SAMPLER_UNIPC;
  return absl::InternalError(
      absl::StrCat("catalog: variant ", variant.name, " has sampler '", variant.sampler, "'"));
}

}  // namespace

absl::Status DefaultSize(const ModelSpec& model, int* width, int* height) {
  if (model.default_width_pixels > 0) {
    *width = model.default_width_pixels;
    *height = model.default_height_pixels;
    return absl::OkStatus();
  }
  return PresetSize(model.default_resolution, model.default_aspect, width, height);
}

absl::Status CheckResolvedJob(const v1::ResolvedJob& job) {
  if (job.model_id().empty()) return Invalid("job.model_id: empty");
  if (job.variant().empty()) return Invalid("job.variant: empty");
  if (job.sampler() == v1::SAMPLER_UNSPECIFIED || !v1::Sampler_IsValid(job.sampler())) {
    return Invalid(absl::StrCat("job.sampler: ", job.sampler(), " is not RCM or UNIPC"));
  }
  if (job.num_steps() < 1) return Invalid(absl::StrCat("job.num_steps: ", job.num_steps()));
  if (job.num_frames() < 1 || (job.num_frames() - 1) % 4 != 0) {
    return Invalid(absl::StrCat("job.num_frames: ", job.num_frames(), " is not 4k+1"));
  }
  if (job.width_pixels() < 16 || job.width_pixels() % 16 != 0) {
    return Invalid(absl::StrCat("job.width_pixels: ", job.width_pixels()));
  }
  if (job.height_pixels() < 16 || job.height_pixels() % 16 != 0) {
    return Invalid(absl::StrCat("job.height_pixels: ", job.height_pixels()));
  }
  switch (job.attention()) {
    case v1::ATTENTION_MODE_DENSE:
      break;
    case v1::ATTENTION_MODE_SLA:
    case v1::ATTENTION_MODE_SAGESLA:
      if (!(job.sla_topk() > 0.f && job.sla_topk() <= 1.f)) {
        return Invalid(absl::StrCat("job.sla_topk: ", job.sla_topk(), " is outside (0, 1]"));
      }
      break;
    case v1::ATTENTION_MODE_UNSPECIFIED:
    default:
      return Invalid(
          absl::StrCat("job.attention: ", job.attention(), " is not DENSE, SLA or SAGESLA"));
  }
  if (job.prompt().empty()) return Invalid("job.prompt: empty");
  if (job.preview_width() != 0 && (job.preview_width() < 16 || job.preview_width() > 512)) {
    return Invalid(absl::StrCat("job.preview_width: ", job.preview_width(), " is outside 16..512"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ResolvedRequest> ValidateSubmit(const v1::SubmitVideoRequest& request,
                                               const ModelCatalog& catalog,
                                               const AdmissionLimits& limits,
                                               uint64_t random_seed) {
  ResolvedRequest out;
  if (request.model_id().empty()) return Invalid("model_id: empty");
  out.model = catalog.Find(request.model_id());
  if (out.model == nullptr) {
    return Invalid(absl::StrCat("model_id: unknown model '", request.model_id().substr(0, 128),
                                "' (known: ", catalog.ModelIds(), ")"));
  }
  const std::string variant_name =
      request.variant().empty() ? out.model->default_variant : request.variant();
  out.variant = out.model->FindVariant(variant_name);
  if (out.variant == nullptr) {
    return Invalid(absl::StrCat("variant: '", variant_name.substr(0, 128), "' is not a variant of ",
                                out.model->id));
  }
  if (request.prompt().empty()) return Invalid("prompt: empty");
  if (request.preview_width() != 0 &&
      (request.preview_width() < 16 || request.preview_width() > 512)) {
    return Invalid(absl::StrCat("preview_width: ", request.preview_width(),
                                " is outside 16..512 (0 = no previews)"));
  }
  TV_RETURN_IF_ERROR(CheckText("prompt", request.prompt(), limits));
  TV_RETURN_IF_ERROR(CheckText("negative_prompt", request.negative_prompt(), limits));
  if (!request.negative_prompt().empty() && !out.variant->cfg) {
    return Invalid(absl::StrCat("negative_prompt: variant ", out.variant->name,
                                " does not use classifier-free guidance"));
  }
  ImageInfo image;
  TV_RETURN_IF_ERROR(CheckImage(request, *out.variant, limits, &image));

  out.num_frames = request.num_frames() == 0 ? out.model->default_num_frames : request.num_frames();
  if (out.num_frames < 1 || (out.num_frames - 1) % 4 != 0) {
    return Invalid(absl::StrCat("num_frames: ", out.num_frames, " is not 4k+1"));
  }
  if (out.num_frames > limits.max_num_frames) {
    return Invalid(
        absl::StrCat("num_frames: ", out.num_frames, " > limit ", limits.max_num_frames));
  }
  TV_RETURN_IF_ERROR(ResolveSize(request, *out.model, limits, &out));
  if (out.variant->is_i2v) TV_RETURN_IF_ERROR(AdaptSizeToImage(image, limits, &out));

  out.num_steps = request.num_steps() == 0 ? out.variant->default_steps : request.num_steps();
  if (out.num_steps < 1 || out.num_steps > out.variant->max_steps) {
    return Invalid(absl::StrCat("num_steps: ", out.num_steps, " is not in [1, ",
                                out.variant->max_steps, "] for variant ", out.variant->name));
  }
  if (!v1::AttentionMode_IsValid(request.attention())) {
    return Invalid(absl::StrCat("attention: unknown mode ", request.attention()));
  }
  out.attention = request.attention();
  if (out.attention == v1::ATTENTION_MODE_UNSPECIFIED) {
    out.attention = out.variant->attention == "sla"       ? v1::ATTENTION_MODE_SLA
                    : out.variant->attention == "sagesla" ? v1::ATTENTION_MODE_SAGESLA
                                                          : v1::ATTENTION_MODE_DENSE;
  }
  if (request.priority() > limits.max_abs_priority ||
      request.priority() < -limits.max_abs_priority) {
    return Invalid(absl::StrCat("priority: ", request.priority(), " is not in [-",
                                limits.max_abs_priority, ", ", limits.max_abs_priority, "]"));
  }
  if (static_cast<int64_t>(request.client_request_id().size()) >
      limits.max_client_request_id_bytes) {
    return Invalid(absl::StrCat("client_request_id: ", request.client_request_id().size(),
                                " bytes > limit ", limits.max_client_request_id_bytes));
  }
  for (char c : request.client_request_id()) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return Invalid("client_request_id: control characters are not allowed");
    }
  }
  out.seed = request.random_seed() ? random_seed : request.seed();
  TV_ASSIGN_OR_RETURN(out.job, ResolveJob(AcceptedRequest(request, out), *out.variant));
  return out;
}

v1::SubmitVideoRequest AcceptedRequest(const v1::SubmitVideoRequest& request,
                                       const ResolvedRequest& resolved) {
  v1::SubmitVideoRequest accepted = request;
  accepted.clear_image();
  accepted.set_variant(resolved.variant->name);
  accepted.set_num_frames(resolved.num_frames);
  accepted.set_num_steps(resolved.num_steps);
  accepted.set_attention(resolved.attention);
  accepted.set_seed(resolved.seed);
  accepted.set_random_seed(false);
  accepted.mutable_size()->set_width_pixels(resolved.width_pixels);
  accepted.mutable_size()->set_height_pixels(resolved.height_pixels);
  return accepted;
}

absl::StatusOr<v1::ResolvedJob> ResolveJob(const v1::SubmitVideoRequest& accepted,
                                           const VariantSpec& variant) {
  v1::ResolvedJob job;
  job.set_model_id(accepted.model_id());
  job.set_variant(variant.name);
  TV_ASSIGN_OR_RETURN(v1::Sampler sampler, SamplerOf(variant));
  job.set_sampler(sampler);
  job.set_num_steps(accepted.num_steps());
  job.set_num_frames(accepted.num_frames());
  job.set_width_pixels(accepted.size().width_pixels());
  job.set_height_pixels(accepted.size().height_pixels());
  job.set_seed(accepted.seed());
  job.set_attention(accepted.attention());
  const bool sparse = accepted.attention() == v1::ATTENTION_MODE_SLA ||
                      accepted.attention() == v1::ATTENTION_MODE_SAGESLA;
  job.set_sla_topk(sparse ? static_cast<float>(variant.sla_topk) : 0.f);
  job.set_prompt(accepted.prompt());
  job.set_negative_prompt(accepted.negative_prompt());
  job.set_preview_width(accepted.preview_width());
  job.set_progressive(accepted.progressive());
  TV_RETURN_IF_ERROR(CheckResolvedJob(job));
  return job;
}

}  // namespace turbovid::scheduler
