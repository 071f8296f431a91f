// The catalog of servable models and variants (configs/models.yaml), shared by admission and
// placement. The worker reads the same file; keys the scheduler does not use are allowed there.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace turbovid::common {
class ConfigNode;
}  // namespace turbovid::common

namespace turbovid::scheduler {

struct VariantSpec {
  std::string name;     // "turbo", "turbo-int8", "original"
  std::string sampler;  // "rcm" or "unipc"
  int default_steps = 4;
  int max_steps = 4;
  std::string attention;  // default self-attention: "dense" or "sla"
  double sla_topk = 0.1;  // SLA: fraction of key blocks kept per query block, (0, 1]
  std::string weights;    // "bf16" or "int8"
  bool is_i2v = false;    // needs a conditioning image
  bool cfg = false;       // classifier-free guidance (accepts negative_prompt)
  std::map<std::string, int64_t> memory_bytes;  // node class -> memory the variant needs
  std::map<std::string, int> gpus;  // node class -> GPUs of one worker (group); absent = 1
  std::string checkpoint;  // for workers: checkpoint location (the scheduler ignores it)
};

struct ModelSpec {
  std::string id;
  std::string arch;  // engine architecture name, for workers
  int experts = 1;
  std::string default_variant;
  std::string default_resolution;  // preset used when a request has no size
  std::string default_aspect;
  int default_width_pixels = 0;  // explicit default size (overrides the preset) when > 0
  int default_height_pixels = 0;
  int default_num_frames = 81;
  std::vector<VariantSpec> variants;

  const VariantSpec* FindVariant(const std::string& name) const;
};

class ModelCatalog {
 public:
  static absl::StatusOr<ModelCatalog> LoadFile(const std::string& path);
  static absl::StatusOr<ModelCatalog> Parse(const common::ConfigNode& root);

  const ModelSpec* Find(const std::string& model_id) const;
  const std::vector<ModelSpec>& models() const { return models_; }
  // "a, b, c" for messages.
  std::string ModelIds() const;
  // Node classes named in any variant's memory table ("cpu", "h100", ...).
  std::set<std::string> NodeClasses() const;

 private:
  std::vector<ModelSpec> models_;
};

// Output pixel size of a preset; InvalidArgument naming `size.resolution` / `size.aspect`.
absl::Status PresetSize(const std::string& resolution, const std::string& aspect, int* width,
                        int* height);

}  // namespace turbovid::scheduler
