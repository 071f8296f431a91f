// Checkpoint inventories and tiny random checkpoints (see tiny_checkpoint.h).
#include "engine/testing/tiny_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/io/pth.h"
#include "engine/io/safetensors.h"
#include "engine/models/text_encoder.h"
#include "engine/samplers/noise.h"
#include "engine/testing/tiny_tokenizer.h"

namespace turbovid::engine {
namespace {

void AddLinear(TensorShapes& s, const std::string& name, int64_t out, int64_t in, bool bias = true) {
  s.push_back({name + ".weight", {out, in}});
  if (bias) s.push_back({name + ".bias", {out}});
}

void AddVaeResBlock(TensorShapes& s, const std::string& p, int64_t in, int64_t out) {
  s.push_back({p + ".residual.0.gamma", {in, 1, 1, 1}});
  s.push_back({p + ".residual.2.weight", {out, in, 3, 3, 3}});
  s.push_back({p + ".residual.2.bias", {out}});
  s.push_back({p + ".residual.3.gamma", {out, 1, 1, 1}});
  s.push_back({p + ".residual.6.weight", {out, out, 3, 3, 3}});
  s.push_back({p + ".residual.6.bias", {out}});
  if (in != out) {
    s.push_back({p + ".shortcut.weight", {out, in, 1, 1, 1}});
    s.push_back({p + ".shortcut.bias", {out}});
  }
}

void AddVaeMiddle(TensorShapes& s, const std::string& p, int64_t c) {
  AddVaeResBlock(s, p + ".middle.0", c, c);
  s.push_back({p + ".middle.1.norm.gamma", {c, 1, 1}});
  s.push_back({p + ".middle.1.to_qkv.weight", {3 * c, c, 1, 1}});
  s.push_back({p + ".middle.1.to_qkv.bias", {3 * c}});
  s.push_back({p + ".middle.1.proj.weight", {c, c, 1, 1}});
  s.push_back({p + ".middle.1.proj.bias", {c}});
  AddVaeResBlock(s, p + ".middle.2", c, c);
}

}  // namespace

TensorShapes DitTensorShapes(const DitConfig& c, bool sla) {
  TensorShapes s;
  const int64_t d = c.dim;
  s.push_back({"patch_embedding.weight", {d, c.in_dim, c.patch_size[0], c.patch_size[1], c.patch_size[2]}});
  s.push_back({"patch_embedding.bias", {d}});
  AddLinear(s, "text_embedding.0", d, c.text_dim);
  AddLinear(s, "text_embedding.2", d, d);
  AddLinear(s, "time_embedding.0", d, c.freq_dim);
  AddLinear(s, "time_embedding.2", d, d);
  AddLinear(s, "time_projection.1", 6 * d, d);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string b = absl::StrCat("blocks.", i);
    s.push_back({b + ".modulation", {1, 6, d}});
    for (const char* attn : {".self_attn", ".cross_attn"}) {
      for (const char* proj : {".q", ".k", ".v", ".o"}) AddLinear(s, b + attn + proj, d, d);
      s.push_back({b + attn + ".norm_q.weight", {d}});
      s.push_back({b + attn + ".norm_k.weight", {d}});
    }
    if (sla) AddLinear(s, b + ".self_attn.attn_op.local_attn.proj_l", c.head_dim(), c.head_dim());
    s.push_back({b + ".norm3.weight", {d}});
    s.push_back({b + ".norm3.bias", {d}});
    AddLinear(s, b + ".ffn.0", c.ffn_dim, d);
    AddLinear(s, b + ".ffn.2", d, c.ffn_dim);
  }
  s.push_back({"head.modulation", {1, 2, d}});
  const int64_t patch = int64_t{c.patch_size[0]} * c.patch_size[1] * c.patch_size[2];
  AddLinear(s, "head.head", patch * c.out_dim, d);
  return s;
}

TensorShapes T5TensorShapes(const T5Config& c) {
  TensorShapes s;
  s.push_back({"token_embedding.weight", {c.vocab, c.dim}});
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string b = absl::StrCat("blocks.", i);
    s.push_back({b + ".norm1.weight", {c.dim}});
    for (const char* p : {".attn.q", ".attn.k", ".attn.v"}) AddLinear(s, b + p, c.dim_attn, c.dim, false);
    AddLinear(s, b + ".attn.o", c.dim, c.dim_attn, false);
    s.push_back({b + ".norm2.weight", {c.dim}});
    AddLinear(s, b + ".ffn.gate.0", c.dim_ffn, c.dim, false);
    AddLinear(s, b + ".ffn.fc1", c.dim_ffn, c.dim, false);
    AddLinear(s, b + ".ffn.fc2", c.dim, c.dim_ffn, false);
    if (!c.shared_pos) s.push_back({b + ".pos_embedding.embedding.weight", {c.num_buckets, c.num_heads}});
  }
  s.push_back({"norm.weight", {c.dim}});
  return s;
}

TensorShapes VaeTensorShapes(const VaeConfig& c, bool encoder, bool decoder) {
  TensorShapes s;
  const int64_t z = c.z_dim;
  const size_t stages = c.dim_mult.size();
  if (encoder) {
    std::vector<int64_t> dims = {c.dim};
    for (int m : c.dim_mult) dims.push_back(int64_t{c.dim} * m);
    s.push_back({"encoder.conv1.weight", {dims[0], 3, 3, 3, 3}});
    s.push_back({"encoder.conv1.bias", {dims[0]}});
    int idx = 0;
    for (size_t i = 0; i < stages; ++i) {
      int64_t in = dims[i];
      for (int r = 0; r < c.num_res_blocks; ++r, in = dims[i + 1]) {
        AddVaeResBlock(s, absl::StrCat("encoder.downsamples.", idx++), in, dims[i + 1]);
      }
      if (i + 1 != stages) {
        const std::string p = absl::StrCat("encoder.downsamples.", idx++);
        const int64_t ch = dims[i + 1];
        s.push_back({p + ".resample.1.weight", {ch, ch, 3, 3}});
        s.push_back({p + ".resample.1.bias", {ch}});
        if (c.temporal_downsample[i]) {
          s.push_back({p + ".time_conv.weight", {ch, ch, 3, 1, 1}});
          s.push_back({p + ".time_conv.bias", {ch}});
        }
      }
    }
    AddVaeMiddle(s, "encoder", dims.back());
    s.push_back({"encoder.head.0.gamma", {dims.back(), 1, 1, 1}});
    s.push_back({"encoder.head.2.weight", {2 * z, dims.back(), 3, 3, 3}});
    s.push_back({"encoder.head.2.bias", {2 * z}});
    s.push_back({"conv1.weight", {2 * z, 2 * z, 1, 1, 1}});
    s.push_back({"conv1.bias", {2 * z}});
  }
  if (decoder) {
    std::vector<int64_t> dims = {int64_t{c.dim} * c.dim_mult.back()};
    for (size_t i = stages; i-- > 0;) dims.push_back(int64_t{c.dim} * c.dim_mult[i]);
    s.push_back({"conv2.weight", {z, z, 1, 1, 1}});
    s.push_back({"conv2.bias", {z}});
    s.push_back({"decoder.conv1.weight", {dims[0], z, 3, 3, 3}});
    s.push_back({"decoder.conv1.bias", {dims[0]}});
    AddVaeMiddle(s, "decoder", dims[0]);
    int idx = 0;
    for (size_t i = 0; i < stages; ++i) {
      // Every Resample of the 2.1 decoder halves channels, so later stages start at half width.
      int64_t in = (i >= 1 && i <= 3) ? dims[i] / 2 : dims[i];
      for (int r = 0; r < c.num_res_blocks + 1; ++r, in = dims[i + 1]) {
        AddVaeResBlock(s, absl::StrCat("decoder.upsamples.", idx++), in, dims[i + 1]);
      }
      if (i + 1 != stages) {
        const std::string p = absl::StrCat("decoder.upsamples.", idx++);
        const int64_t ch = dims[i + 1];
        s.push_back({p + ".resample.1.weight", {ch / 2, ch, 3, 3}});
        s.push_back({p + ".resample.1.bias", {ch / 2}});
        const bool temporal = c.temporal_downsample[stages - 2 - i];
        if (temporal) {
          s.push_back({p + ".time_conv.weight", {2 * ch, ch, 3, 1, 1}});
          s.push_back({p + ".time_conv.bias", {2 * ch}});
        }
      }
    }
    s.push_back({"decoder.head.0.gamma", {dims.back(), 1, 1, 1}});
    s.push_back({"decoder.head.2.weight", {3, dims.back(), 3, 3, 3}});
    s.push_back({"decoder.head.2.bias", {3}});
  }
  return s;
}

TinyModelSizes TinySizes(bool i2v) {
  TinyModelSizes t;
  t.dit.model_type = i2v ? "i2v" : "t2v";
  t.dit.in_dim = i2v ? 36 : 16;
  t.dit.dim = 128;
  t.dit.ffn_dim = 256;
  t.dit.text_dim = 64;
  t.dit.num_heads = 1;
  t.dit.num_layers = 2;
  t.t5.vocab = 512;
  t.t5.dim = 64;
  t.t5.dim_attn = 64;
  t.t5.dim_ffn = 128;
  t.t5.num_heads = 4;
  t.t5.num_layers = 2;
  t.vae.dim = 4;
  return t;
}

namespace {

// Random weights with the magnitudes a trained net has (norm gains 1, linear std 1/√fan_in),
// rounded to bf16 and stored as BF16 (norm gains F32, as TurboDiffusion stores them).
io::TensorMap RandomWeights(const TensorShapes& shapes, uint64_t seed) {
  io::TensorMap out;
  uint64_t stream = 0;
  for (const auto& [name, shape] : shapes) {
    const bool is_norm = name.find("norm") != std::string::npos || name.find("gamma") != std::string::npos;
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    Tensor f = GaussianNoise(shape, seed, ++stream);
    int64_t fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    const bool is_mod = name.find("modulation") != std::string::npos;
    const float scale = is_bias || is_mod ? 0.02f : 1.0f / std::sqrt(static_cast<float>(fan_in));
    Tensor stored = Tensor::Zeros(is_norm && !is_bias ? DType::kF32 : DType::kBF16, shape);
    for (int64_t i = 0; i < f.numel(); ++i) {
      float v = is_norm && !is_bias ? 1.0f + 0.1f * f.data<float>()[i] : scale * f.data<float>()[i];
      if (stored.dtype() == DType::kF32) {
        stored.data<float>()[i] = RoundToBf16(v);
      } else {
        stored.data<uint16_t>()[i] = F32ToBf16(v);
      }
    }
    out[name] = stored;
  }
  return out;
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

std::string DitConfigJson(const DitConfig& c) {
  return absl::StrCat("{\n  \"_class_name\": \"WanModel\",\n  \"model_type\": \"", c.model_type,
                      "\",\n  \"in_dim\": ", c.in_dim, ",\n  \"dim\": ", c.dim, ",\n  \"ffn_dim\": ",
                      c.ffn_dim, ",\n  \"freq_dim\": ", c.freq_dim, ",\n  \"text_dim\": ", c.text_dim,
                      ",\n  \"text_len\": ", c.text_len, ",\n  \"out_dim\": ", c.out_dim,
                      ",\n  \"num_heads\": ", c.num_heads, ",\n  \"num_layers\": ", c.num_layers,
                      ",\n  \"eps\": 1e-06\n}\n");
}

absl::Status WriteDit(const std::string& dir, const DitConfig& c, uint64_t seed) {
  std::filesystem::create_directories(dir);
  TV_RETURN_IF_ERROR(WriteText(dir + "/config.json", DitConfigJson(c)));
  return io::WriteSafetensors(dir + "/diffusion_pytorch_model.safetensors",
                              RandomWeights(DitTensorShapes(c, /*sla=*/true), seed), {{"format", "pt"}});
}

}  // namespace

absl::Status MakeTinyCheckpoint(const std::string& kind, const std::string& dir, uint64_t seed,
                                int dit_heads) {
  if (kind != "t2v" && kind != "i2v-moe") {
    return absl::InvalidArgumentError(absl::StrCat("kind: '", kind, "' is not t2v or i2v-moe"));
  }
  const bool i2v = kind == "i2v-moe";
  TinyModelSizes sizes = TinySizes(i2v);
  if (dit_heads < 1 || sizes.dit.dim % dit_heads != 0 || sizes.dit.dim / dit_heads < 8) {
    return absl::InvalidArgumentError(absl::StrCat("heads: ", dit_heads, " does not divide DiT dim ",
                                                   sizes.dit.dim, " into heads of 8 or more"));
  }
  sizes.dit.num_heads = dit_heads;
  std::error_code ec;
  std::filesystem::create_directories(dir + "/google/umt5-xxl", ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  if (i2v) {
    TV_RETURN_IF_ERROR(WriteDit(dir + "/high_noise_model", sizes.dit, seed + 1));
    TV_RETURN_IF_ERROR(WriteDit(dir + "/low_noise_model", sizes.dit, seed + 2));
  } else {
    TV_RETURN_IF_ERROR(WriteDit(dir, sizes.dit, seed + 1));
  }
  TV_RETURN_IF_ERROR(io::WritePth(dir + "/models_t5_umt5-xxl-enc-bf16.pth",
                                  RandomWeights(T5TensorShapes(sizes.t5), seed + 3)));
  TV_RETURN_IF_ERROR(io::WritePth(dir + "/Wan2.1_VAE.pth",
                                  RandomWeights(VaeTensorShapes(sizes.vae, true, true), seed + 4)));
  TV_RETURN_IF_ERROR(CreateTinyTokenizer(dir + "/google/umt5-xxl", sizes.t5.vocab));
  const auto& t5 = sizes.t5;
  return WriteText(
      dir + "/turbovid.json",
      absl::StrCat("{\n  \"kind\": \"", kind, "\",\n  \"t5\": {\"vocab\": ", t5.vocab, ", \"dim\": ", t5.dim,
                   ", \"dim_attn\": ", t5.dim_attn, ", \"dim_ffn\": ", t5.dim_ffn, ", \"num_heads\": ",
                   t5.num_heads, ", \"num_layers\": ", t5.num_layers, ", \"num_buckets\": ", t5.num_buckets,
                   "},\n  \"vae\": {\"dim\": ", sizes.vae.dim, ", \"z_dim\": ", sizes.vae.z_dim, "}\n}\n"));
}

}  // namespace turbovid::engine
