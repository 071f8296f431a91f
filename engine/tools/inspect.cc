// `turbovid-engine inspect PATH`: every tensor of a checkpoint (normalised name, dtype, shape,
// file), totals, and a guess at the model from shapes (docs/model-math.md §1, §2, §4, §5).
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/io/weights.h"
#include "engine/tools/commands.h"

namespace turbovid::engine::tools {
namespace {

using io::WeightSet;

const Shape* ShapeOf(const WeightSet& w, const std::string& name) {
  const WeightSet::Entry* e = w.Find(name);
  return e == nullptr ? nullptr : &e->tensor.shape();
}

bool AnyEndsWith(const WeightSet& w, const std::string& suffix) {
  for (const auto& [name, e] : w.entries()) {
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return true;
    }
  }
  return false;
}

int64_t CountBlocks(const WeightSet& w) {
  std::set<int64_t> ids;
  for (const auto& [name, e] : w.entries()) {
    if (name.rfind("blocks.", 0) != 0) continue;
    int64_t id = 0;
    size_t i = 7;
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) id = id * 10 + (name[i] - '0');
    if (i > 7) ids.insert(id);
  }
  return static_cast<int64_t>(ids.size());
}

std::string DescribeDiT(const WeightSet& w) {
  const Shape& pe = *ShapeOf(w, "patch_embedding.weight");
  const int64_t dim = pe[0], layers = CountBlocks(w);
  // Official Conv3d kernel [D, C, 1, 2, 2]; TurboDiffusion's linear patch embedder [D, C*1*2*2].
  const bool linear_patch = pe.size() == 2;
  const int64_t in_dim = pe.size() < 2 ? 0 : linear_patch ? pe[1] / 4 : pe[1];
  const bool k_img =
      w.Has("blocks.0.cross_attn.k_img.weight") || AnyEndsWith(w, "k_img.int8_weight");
  std::string model;
  if (dim == 1536 && layers == 30 && in_dim == 16) {
    model = "Wan2.1 T2V-1.3B";
  } else if (dim == 5120 && layers == 40 && in_dim == 16) {
    model = "Wan2.1 T2V-14B (or a Wan2.2 T2V-A14B expert)";
  } else if (dim == 5120 && layers == 40 && in_dim == 36) {
    model = k_img ? "Wan2.1 I2V-14B" : "Wan2.2 I2V-A14B expert";
  } else if (dim == 3072 && layers == 30 && in_dim == 48) {
    model = "Wan2.2 TI2V-5B";
  } else {
    model = "tiny/custom Wan";
  }
  std::vector<std::string> notes = {absl::StrCat("dim ", dim), absl::StrCat(layers, " layers"),
                                    absl::StrCat("in_dim ", in_dim)};
  if (const Shape* f = ShapeOf(w, "blocks.0.ffn.0.weight"))
    notes.push_back(absl::StrCat("ffn_dim ", (*f)[0]));
  if (const Shape* f = ShapeOf(w, "blocks.0.ffn.0.int8_weight"))
    notes.push_back(absl::StrCat("ffn_dim ", (*f)[0]));
  if (linear_patch) notes.push_back("TurboDiffusion layout (2-D patch embedding)");
  if (AnyEndsWith(w, ".int8_weight")) notes.push_back("int8-quantised linears");
  if (AnyEndsWith(w, "local_attn.proj_l.weight")) notes.push_back("SLA proj_l present");
  if (k_img) notes.push_back("CLIP image cross-attention");
  return absl::StrCat(model, " DiT (", absl::StrJoin(notes, ", "), ")");
}

std::string DescribeModel(const WeightSet& w) {
  if (ShapeOf(w, "patch_embedding.weight") != nullptr) return DescribeDiT(w);
  if (const Shape* emb = ShapeOf(w, "token_embedding.weight");
      emb != nullptr && emb->size() == 2 && w.Has("blocks.0.attn.q.weight")) {
    const bool xxl = (*emb)[0] == 256384 && (*emb)[1] == 4096 && CountBlocks(w) == 24;
    return absl::StrCat(xxl ? "umT5-XXL encoder" : "umT5 encoder (tiny/custom)", " (vocab ",
                        (*emb)[0], ", dim ", (*emb)[1], ", ", CountBlocks(w), " layers)");
  }
  const Shape* enc = ShapeOf(w, "encoder.conv1.weight");
  const Shape* dec = ShapeOf(w, "decoder.conv1.weight");
  if (enc != nullptr || dec != nullptr) {
    std::string parts = enc && dec ? "encoder + decoder" : enc ? "encoder" : "decoder";
    // z: decoder input channels, or half the encoder's μ‖logvar output (top-level conv1).
    const Shape* mu = ShapeOf(w, "conv1.weight");
    const Shape* head = ShapeOf(w, "decoder.head.2.weight");
    const int64_t z = dec != nullptr && dec->size() >= 2 ? (*dec)[1]
                      : mu != nullptr && !mu->empty()    ? (*mu)[0] / 2
                                                         : 0;
    const int64_t base = enc != nullptr && !enc->empty()        ? (*enc)[0]
                         : head != nullptr && head->size() >= 2 ? (*head)[1]
                                                                : 0;
    std::string kind = z == 48                 ? "Wan2.2 VAE"
                       : z == 16 && base == 96 ? "Wan2.1 VAE"
                                               : "Wan VAE (tiny/custom)";
    return absl::StrCat(kind, " ", parts, " (z_dim ", z, ", base dim ", base, ")");
  }
  return "unknown model";
}

}  // namespace

int InspectCommand(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    std::fprintf(stderr, "usage: turbovid-engine inspect PATH\n");
    return 2;
  }
  auto set = WeightSet::Load(args[0]);
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().ToString().c_str());
    return 1;
  }
  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;  // dtype → (tensors, bytes)
  std::set<std::string> files;
  int64_t params = 0;
  uint64_t bytes = 0;
  for (const auto& [name, e] : set->entries()) {
    const Tensor& t = e.tensor;
    std::printf("%-60s %-5s %-22s %s\n", name.c_str(), std::string(DTypeName(t.dtype())).c_str(),
                ShapeString(t.shape()).c_str(), e.file.c_str());
    auto& d = by_dtype[std::string(DTypeName(t.dtype()))];
    d.first += 1;
    d.second += t.nbytes();
    params += t.numel();
    bytes += t.nbytes();
    files.insert(e.file);
  }
  std::printf("\n%zu tensors, %lld parameters, %llu bytes in %zu file(s)\n", set->entries().size(),
              static_cast<long long>(params), static_cast<unsigned long long>(bytes), files.size());
  for (const auto& [dtype, d] : by_dtype) {
    std::printf("  %-5s %6lld tensors %14llu bytes\n", dtype.c_str(),
                static_cast<long long>(d.first), static_cast<unsigned long long>(d.second));
  }
  std::printf("model: %s\n", DescribeModel(*set).c_str());
  return 0;
}

}  // namespace turbovid::engine::tools
