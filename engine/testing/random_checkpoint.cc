// Seeded random checkpoints of the real Wan sizes, streamed to disk (see random_checkpoint.h).
#include "engine/testing/random_checkpoint.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "engine/core/parallel.h"
#include "engine/models/text_encoder.h"

namespace turbovid::engine {
namespace {

namespace fs = std::filesystem;

constexpr char kSharedDir[] = "wan2.1-umt5-vae-random";
constexpr char kDitFile[] = "diffusion_pytorch_model.safetensors";
constexpr char kVaeFile[] = "Wan2.1_VAE.safetensors";
constexpr int64_t kChunkBytes = int64_t{32} << 20;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// How one tensor is filled: offset + scale·√3·(2u − 1), u uniform in (0, 1) from 16 random bits,
// i.e. mean `offset` and standard deviation `scale`. I8 tensors (int8 linear codes) hold
// round((2u − 1)·127); a `constant` tensor (their block scales) holds `offset` everywhere.
struct Fill {
  std::string name;
  Shape shape;
  DType dtype = DType::kBF16;
  float offset = 0;
  float scale = 0;
  bool constant = false;
  uint64_t key = 0;
  int64_t numel = 0;
};

// Standard deviations that differ from the default rule below, by tensor name; `tag` goes into the
// file header, so that a file written under another rule is regenerated, not reused.
struct StdOverrides {
  std::map<std::string, float> std;
  std::map<std::string, float> constant;  // F32 tensors of one value (int8 block scales)
  std::string tag;
};

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

Fill FillFor(const std::string& name, const Shape& shape, uint64_t seed, uint64_t index,
             const StdOverrides& overrides) {
  Fill f;
  f.name = name;
  f.shape = shape;
  f.numel = NumElements(shape);
  const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
  const bool is_norm = !is_bias && (name.find("norm") != std::string::npos ||
                                    name.find("gamma") != std::string::npos);
  const bool is_mod = name.find("modulation") != std::string::npos;
  int64_t fan_in = 1;
  for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
  if (is_norm) {
    f.dtype = DType::kF32;
    f.offset = 1.0f;
    f.scale = 0.1f;
  } else {
    f.scale = is_bias || is_mod ? 0.02f : 1.0f / std::sqrt(static_cast<float>(fan_in));
  }
  if (auto it = overrides.std.find(name); it != overrides.std.end()) f.scale = it->second;
  if (EndsWith(name, ".int8_weight")) f.dtype = DType::kI8;
  if (auto it = overrides.constant.find(name); it != overrides.constant.end()) {
    f.dtype = DType::kF32;
    f.constant = true;
    f.offset = it->second;
    f.scale = 0;
  }
  f.key = SplitMix64(seed ^ SplitMix64(index * 0x632BE59BD9B4E019ull + 1));
  return f;
}

// Element e of a tensor uses bits 16·(e mod 4) of SplitMix64(key + e/4).
float Value(const Fill& f, uint64_t bits) {
  const float u = (static_cast<float>(bits & 0xFFFF) + 0.5f) * (1.0f / 65536.0f);
  return f.offset + f.scale * 1.7320508f * (2.0f * u - 1.0f);
}

// Fills `out` with elements [begin, begin + n) of `f` in its stored dtype.
void Generate(const Fill& f, int64_t begin, int64_t n, char* out) {
  ParallelFor(n, int64_t{1} << 16, [&](int64_t lo, int64_t hi) {
    uint64_t block = ~uint64_t{0}, bits = 0;
    for (int64_t i = lo; i < hi; ++i) {
      const auto e = static_cast<uint64_t>(begin + i);
      if ((e >> 2) != block) {
        block = e >> 2;
        bits = SplitMix64(f.key + block);
      }
      const uint64_t b = bits >> (16 * (e & 3));
      if (f.dtype == DType::kI8) {
        const float u = (static_cast<float>(b & 0xFFFF) + 0.5f) * (1.0f / 65536.0f);
        reinterpret_cast<int8_t*>(out)[i] = static_cast<int8_t>(std::lrint((2.0f * u - 1.0f) * 127.0f));
        continue;
      }
      const float v = f.constant ? f.offset : Value(f, b);
      if (f.dtype == DType::kF32) {
        reinterpret_cast<float*>(out)[i] = RoundToBf16(v);
      } else {
        reinterpret_cast<uint16_t*>(out)[i] = F32ToBf16(v);
      }
    }
  });
}

std::string Header(const std::vector<Fill>& fills, uint64_t seed, const std::string& tag,
                   uint64_t* data_bytes) {
  std::string h =
      absl::StrCat("{\"__metadata__\":{\"format\":\"pt\",\"turbovid_random\":\"v1 seed=", seed,
                   tag.empty() ? "" : " ", tag, "\"}");
  uint64_t offset = 0;
  for (const Fill& f : fills) {
    const uint64_t bytes = static_cast<uint64_t>(f.numel) * DTypeSize(f.dtype);
    absl::StrAppend(&h, ",\"", f.name, "\":{\"dtype\":\"", std::string(DTypeName(f.dtype)),
                    "\",\"shape\":[", absl::StrJoin(f.shape, ","), "],\"data_offsets\":[", offset,
                    ",", offset + bytes, "]}");
    offset += bytes;
  }
  h += "}";
  while (h.size() % 8 != 0) h += ' ';
  *data_bytes = offset;
  return h;
}

// True when `path` holds exactly `header` and the data size it declares.
bool AlreadyWritten(const std::string& path, const std::string& header, uint64_t data_bytes) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec || size != 8 + header.size() + data_bytes) return false;
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (!in || n != header.size()) return false;
  std::string got(n, '\0');
  in.read(got.data(), static_cast<std::streamsize>(n));
  return in && got == header;
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

// Points `link` at `target` (relative), replacing whatever was there.
absl::Status Link(const std::string& target, const std::string& link) {
  std::error_code ec;
  fs::remove_all(link, ec);
  fs::create_symlink(target, link, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(link, ": cannot link: ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteRandom(const std::string& path, const TensorShapes& shapes, uint64_t seed,
                         const StdOverrides& overrides, const LogFn& log) {
  std::vector<Fill> fills;
  for (size_t i = 0; i < shapes.size(); ++i) {
    fills.push_back(FillFor(shapes[i].first, shapes[i].second, seed, i, overrides));
  }
  // F32 first: every tensor then starts 4-byte aligned (all BF16 sizes here are even anyway).
  std::stable_partition(fills.begin(), fills.end(),
                        [](const Fill& f) { return f.dtype == DType::kF32; });
  uint64_t data_bytes = 0;
  const std::string header = Header(fills, seed, overrides.tag, &data_bytes);
  if (AlreadyWritten(path, header, data_bytes)) {
    if (log) log(absl::StrFormat("reusing %s (%.2f GB)", path, data_bytes / 1e9));
    return absl::OkStatus();
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string partial = path + ".partial";
  FILE* file = std::fopen(partial.c_str(), "wb");
  if (file == nullptr) return absl::PermissionDeniedError(absl::StrCat(partial, ": cannot create"));
  const uint64_t n = header.size();
  bool ok = std::fwrite(&n, 8, 1, file) == 1 && std::fwrite(header.data(), 1, n, file) == n;
  // Two buffers: all cores fill one while a writer thread writes the other.
  std::vector<char> buffers[2] = {std::vector<char>(kChunkBytes), std::vector<char>(kChunkBytes)};
  std::future<bool> pending;
  int cur = 0;
  for (const Fill& f : fills) {
    const int64_t elem = static_cast<int64_t>(DTypeSize(f.dtype));
    const int64_t per_chunk = kChunkBytes / elem;
    for (int64_t begin = 0; begin < f.numel && ok; begin += per_chunk) {
      const int64_t count = std::min(per_chunk, f.numel - begin);
      Generate(f, begin, count, buffers[cur].data());
      if (pending.valid()) ok = pending.get();
      const char* data = buffers[cur].data();
      const size_t bytes = static_cast<size_t>(count * elem);
      pending = std::async(std::launch::async, [file, data, bytes] {
        return std::fwrite(data, 1, bytes, file) == bytes;
      });
      cur ^= 1;
    }
  }
  if (pending.valid()) ok = pending.get() && ok;
  ok = std::fclose(file) == 0 && ok;
  if (!ok) {
    std::remove(partial.c_str());
    return absl::ResourceExhaustedError(absl::StrCat(partial, ": write failed (disk full?)"));
  }
  std::error_code ec;
  fs::rename(partial, path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot rename: ", ec.message()));
  if (log) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log(absl::StrFormat("wrote %s (%.2f GB) in %.1f s, %.2f GB/s", path, data_bytes / 1e9, s,
                        data_bytes / 1e9 / std::max(s, 1e-9)));
  }
  return absl::OkStatus();
}

// The umT5 query weights get T5's own initialisation, std 1/sqrt(dim·d_kv) instead of
// 1/sqrt(dim): T5 attention has no 1/sqrt(d_kv) scaling and folds it into the query weights
// (Mesh-TF / HF T5 init). With 1/sqrt(dim) the logits have std ~sqrt(d_kv) (8 for umT5-XXL), the
// softmax is nearly one-hot and the random encoder is chaotic: a bf16-level difference grows
// 1.4-2.8x per layer (bf16 vs fp32 PyTorch at the real size: 1.5e-2 after one layer, 0.38 after
// six), so after 24 layers the engine's CUDA output and the PyTorch reference were unrelated
// (rel. L2 1.07) although both compute the same function. With this init: 1.7e-2 after 24.
StdOverrides T5Init(const T5Config& c) {
  StdOverrides o;
  const float d_kv = static_cast<float>(c.dim_attn / c.num_heads);
  const float q_std = 1.0f / std::sqrt(static_cast<float>(c.dim) * d_kv);
  for (int i = 0; i < c.num_layers; ++i) {
    o.std[absl::StrCat("blocks.", i, ".attn.q.weight")] = q_std;
  }
  o.tag = "t5-init=q/sqrt(dim*d_kv)";
  return o;
}

}  // namespace

absl::Status WriteRandomSafetensors(const std::string& path, const TensorShapes& shapes,
                                    uint64_t seed, const LogFn& log) {
  return WriteRandom(path, shapes, seed, StdOverrides{}, log);
}

std::vector<std::string> RandomModelNames() {
  return {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.2-i2v-a14b", "tiny", "tiny-i2v"};
}

absl::StatusOr<RandomModel> RandomModelByName(const std::string& name) {
  RandomModel m;
  m.name = name;
  if (name == "wan2.1-t2v-1.3b") {
    m.shared_parts = true;  // DitConfig, T5Config and VaeConfig default to these sizes
  } else if (name == "wan2.1-t2v-14b") {
    m.shared_parts = true;
    m.dit.dim = 5120;
    m.dit.ffn_dim = 13824;
    m.dit.num_heads = 40;
    m.dit.num_layers = 40;
  } else if (name == "wan2.2-i2v-a14b") {
    // Each expert is the 14B DiT with the I2V input (x | mask | image latent: 16 + 4 + 16).
    m.shared_parts = true;
    m.two_experts = true;
    m.boundary = 0.9;
    m.dit.model_type = "i2v";
    m.dit.in_dim = 36;
    m.dit.dim = 5120;
    m.dit.ffn_dim = 13824;
    m.dit.num_heads = 40;
    m.dit.num_layers = 40;
  } else if (name == "tiny" || name == "tiny-i2v") {
    const TinyModelSizes tiny = TinySizes(/*i2v=*/name == "tiny-i2v");
    m.two_experts = name == "tiny-i2v";
    m.dit = tiny.dit;
    m.t5 = tiny.t5;
    m.vae = tiny.vae;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("model: '", name, "' is not one of ",
                                                   absl::StrJoin(RandomModelNames(), ", ")));
  }
  return m;
}

const std::vector<std::string>& BenchTokenizerWords() {
  static const auto* words = new std::vector<std::string>{
      "a",         "an",          "the",      "of",        "in",         "on",         "at",
      "with",      "and",         "its",      "her",       "his",        "is",         "are",
      "as",        "by",          "from",     "into",      "over",       "under",      "through",
      "while",     "behind",      "across",   "cinematic", "shot",       "close-up",   "wide",
      "aerial",    "view",        "slow",     "motion",    "camera",     "tracking",   "panning",
      "soft",      "warm",        "golden",   "hour",      "light",      "sunlight",   "shadows",
      "morning",   "evening",     "night",    "city",      "street",     "neon",       "signs",
      "rain",      "reflections", "wet",      "pavement",  "forest",     "mountain",   "river",
      "ocean",     "waves",       "beach",    "sand",      "sky",        "clouds",     "snow",
      "field",     "flowers",     "trees",    "leaves",    "wind",       "fog",        "mist",
      "old",       "young",       "woman",    "man",       "child",      "dog",        "cat",
      "horse",     "bird",        "red",      "blue",      "green",      "white",      "black",
      "yellow",    "coat",        "dress",    "hat",       "umbrella",   "walks",      "runs",
      "flies",     "dances",      "smiles",   "looks",     "turns",      "holds",      "sits",
      "stands",    "crowded",     "quiet",    "busy",      "market",     "train",      "car",
      "bicycle",   "boat",        "bridge",   "window",    "background", "foreground", "detailed",
      "realistic", "high",        "quality",  "4k",        "film",       "grain",      "depth",
      "field,",    "bokeh",       "vibrant",  "colors",    "dramatic",   "lighting",   "gentle",
      "breeze",    "distant",     "hills",    "lanterns",  "steam",      "rising",     "cup",
      "coffee",    "table",       "wooden",   "stone",     "path",       "garden",     "lake",
      "surface",   "ripples",     "evening,", "light,",    "city,"};
  return *words;
}

namespace {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutTag(std::string* out, int field, int wire_type) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}
void PutInt(std::string* out, int field, int64_t v) {
  PutTag(out, field, 0);
  PutVarint(out, static_cast<uint64_t>(v));  // negative int32: ten bytes, as protobuf writes
}
void PutBytes(std::string* out, int field, const std::string& bytes) {
  PutTag(out, field, 2);
  PutVarint(out, bytes.size());
  out->append(bytes);
}
void PutPiece(std::string* model, const std::string& text, float score, int type) {
  std::string piece;
  PutBytes(&piece, 1, text);
  PutTag(&piece, 2, 5);
  uint32_t bits = 0;
  std::memcpy(&bits, &score, sizeof(bits));
  for (int i = 0; i < 4; ++i) piece.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  PutInt(&piece, 3, type);
  PutBytes(model, 1, piece);
}

}  // namespace

absl::Status WriteBenchTokenizer(const std::string& dir, int max_pieces) {
  constexpr int kFixed = 3 + 256 + 1 + 26;
  if (max_pieces < kFixed) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: ", max_pieces, " pieces < ", kFixed));
  }
  const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space
  std::string model;
  PutPiece(&model, "<pad>", 0, 3);  // CONTROL
  PutPiece(&model, "</s>", 0, 3);
  PutPiece(&model, "<unk>", 0, 2);                                                       // UNKNOWN
  for (int b = 0; b < 256; ++b) PutPiece(&model, absl::StrFormat("<0x%02X>", b), 0, 6);  // BYTE
  PutPiece(&model, space, -8.f, 1);
  for (char c = 'a'; c <= 'z'; ++c) PutPiece(&model, std::string(1, c), -10.f, 1);
  int pieces = kFixed;
  const auto& words = BenchTokenizerWords();
  for (size_t i = 0; i < words.size() && pieces < max_pieces; ++i, ++pieces) {
    PutPiece(&model, space + words[i], -5.f - 0.01f * static_cast<float>(i), 1);
  }
  std::string trainer;
  PutInt(&trainer, 3, 1);  // UNIGRAM
  PutInt(&trainer, 4, pieces);
  PutInt(&trainer, 35, 1);   // byte_fallback
  PutInt(&trainer, 40, 2);   // unk_id
  PutInt(&trainer, 41, -1);  // bos_id: none
  PutInt(&trainer, 42, 1);   // eos_id
  PutInt(&trainer, 43, 0);   // pad_id
  PutBytes(&model, 2, trainer);
  std::string normalizer;
  PutBytes(&normalizer, 1, "identity");
  PutInt(&normalizer, 3, 1);
  PutInt(&normalizer, 4, 1);
  PutInt(&normalizer, 5, 1);
  PutBytes(&model, 3, normalizer);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  return WriteText(dir + "/spiece.model", model);
}

namespace {

std::string DitConfigJson(const DitConfig& c) {
  return absl::StrCat("{\n  \"_class_name\": \"WanModel\",\n  \"model_type\": \"", c.model_type,
                      "\",\n  \"in_dim\": ", c.in_dim, ",\n  \"dim\": ", c.dim,
                      ",\n  \"ffn_dim\": ", c.ffn_dim, ",\n  \"freq_dim\": ", c.freq_dim,
                      ",\n  \"text_dim\": ", c.text_dim, ",\n  \"text_len\": ", c.text_len,
                      ",\n  \"out_dim\": ", c.out_dim, ",\n  \"num_heads\": ", c.num_heads,
                      ",\n  \"num_layers\": ", c.num_layers, ",\n  \"eps\": 1e-06\n}\n");
}

std::string ManifestJson(const RandomModel& m, uint64_t seed) {
  const T5Config& t = m.t5;
  return absl::StrCat(
      "{\n  \"kind\": \"", m.two_experts ? "i2v-moe" : "t2v", "\",\n",
      m.two_experts ? absl::StrCat("  \"boundary\": ", m.boundary, ",\n") : "",
      "  \"random_weights\": {\"model\": \"", m.name,
      "\", \"seed\": ", seed, "},\n  \"t5\": {\"vocab\": ", t.vocab, ", \"dim\": ", t.dim,
      ", \"dim_attn\": ", t.dim_attn, ", \"dim_ffn\": ", t.dim_ffn,
      ", \"num_heads\": ", t.num_heads, ", \"num_layers\": ", t.num_layers,
      ", \"num_buckets\": ", t.num_buckets, ", \"max_distance\": ", t.max_distance,
      "},\n  \"vae\": {\"dim\": ", m.vae.dim, ", \"z_dim\": ", m.vae.z_dim, "}\n}\n");
}

// The DiT's tensors as written: with int8 linears, each quantised block linear's `.weight` becomes
// `.int8_weight` (I8, same shape) + `.scale` (F32, one per 128×128 tile) of one value giving
// uniform codes the bf16 rule's standard deviation, 1/sqrt(fan_in) = 127·scale/sqrt(3).
TensorShapes DitShapesAsWritten(const RandomModel& m, StdOverrides* overrides) {
  TensorShapes shapes = DitTensorShapes(m.dit, /*sla=*/true);
  if (!m.int8_linears) return shapes;
  static const char* const kQuantised[] = {".self_attn.q.weight", ".self_attn.k.weight",
                                           ".self_attn.v.weight", ".self_attn.o.weight",
                                           ".cross_attn.q.weight", ".cross_attn.k.weight",
                                           ".cross_attn.v.weight", ".cross_attn.o.weight",
                                           ".ffn.0.weight", ".ffn.2.weight"};
  TensorShapes out;
  for (auto& [name, shape] : shapes) {
    const bool quantised =
        name.rfind("blocks.", 0) == 0 && shape.size() == 2 &&
        std::any_of(std::begin(kQuantised), std::end(kQuantised),
                    [&](const char* suffix) { return EndsWith(name, suffix); });
    if (!quantised) {
      out.emplace_back(name, shape);
      continue;
    }
    const std::string prefix = name.substr(0, name.size() - std::strlen(".weight"));
    out.emplace_back(prefix + ".int8_weight", shape);
    out.emplace_back(prefix + ".scale", Shape{(shape[0] + 127) / 128, (shape[1] + 127) / 128});
    overrides->constant[prefix + ".scale"] =
        1.7320508f / (127.0f * std::sqrt(static_cast<float>(shape[1])));
  }
  overrides->tag = "int8-linears=uniform-codes";
  return out;
}

// Writes one DiT (config.json + weights) into `dir`.
absl::Status WriteDit(const RandomModel& m, const std::string& dir, uint64_t seed,
                      const LogFn& log) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  TV_RETURN_IF_ERROR(WriteText(dir + "/config.json", DitConfigJson(m.dit)));
  StdOverrides overrides;
  const TensorShapes shapes = DitShapesAsWritten(m, &overrides);
  return WriteRandom(absl::StrCat(dir, "/", kDitFile), shapes, seed, overrides, log);
}

// Writes the umT5 + tokenizer and/or the VAE into `dir`.
absl::Status WriteTextAndVae(const RandomModel& m, const std::string& dir, const RandomParts& parts,
                             uint64_t seed, const LogFn& log) {
  if (parts.text) {
    TV_RETURN_IF_ERROR(WriteRandom(absl::StrCat(dir, "/", TextEncoder::kWeightsSafetensors),
                                   T5TensorShapes(m.t5), seed + 3, T5Init(m.t5), log));
    TV_RETURN_IF_ERROR(WriteBenchTokenizer(absl::StrCat(dir, "/", TextEncoder::kTokenizerDir),
                                           std::min(m.t5.vocab, 4096)));
  }
  return WriteRandomSafetensors(absl::StrCat(dir, "/", kVaeFile),
                                VaeTensorShapes(m.vae, /*encoder=*/true, /*decoder=*/true),
                                seed + 4, log);
}

}  // namespace

absl::StatusOr<std::string> EnsureRandomCheckpoint(const RandomModel& model,
                                                   const std::string& work_dir,
                                                   const RandomParts& parts, uint64_t seed,
                                                   const LogFn& log) {
  const std::string dir = absl::StrCat(work_dir, "/", model.name);
  const std::string shared = absl::StrCat(work_dir, "/", kSharedDir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec && model.shared_parts) fs::create_directories(shared + "/google", ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat(work_dir, ": cannot create: ", ec.message()));
  if (parts.dit && model.two_experts) {
    TV_RETURN_IF_ERROR(WriteDit(model, dir + "/high_noise_model", seed + 1, log));
    TV_RETURN_IF_ERROR(WriteDit(model, dir + "/low_noise_model", seed + 2, log));
  } else if (parts.dit) {
    TV_RETURN_IF_ERROR(WriteDit(model, dir, seed + 1, log));
  }
  TV_RETURN_IF_ERROR(WriteText(dir + "/turbovid.json", ManifestJson(model, seed)));
  if (!model.shared_parts) {
    TV_RETURN_IF_ERROR(WriteTextAndVae(model, dir, parts, seed, log));
    return dir;
  }
  TV_RETURN_IF_ERROR(WriteTextAndVae(model, shared, parts, seed, log));
  const std::string up = absl::StrCat("../", kSharedDir, "/");
  if (parts.text) {
    TV_RETURN_IF_ERROR(Link(up + TextEncoder::kWeightsSafetensors,
                            absl::StrCat(dir, "/", TextEncoder::kWeightsSafetensors)));
    TV_RETURN_IF_ERROR(Link(up + "google", dir + "/google"));
  }
  TV_RETURN_IF_ERROR(Link(up + kVaeFile, absl::StrCat(dir, "/", kVaeFile)));
  return dir;
}

}  // namespace turbovid::engine
