// TextEncoder: umT5 tokenizer + UmT5Encoder + an LRU prompt-embedding cache, loaded from a Wan
// checkpoint folder (docs/model-math.md §4). Also free-function forms of the tokenizer API
// (engine/text/tokenizer.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/backend.h"
#include "engine/core/tensor.h"

namespace turbovid::engine {

class Tokenizer;
class UmT5Encoder;
struct T5Config;
namespace io {
class WeightSet;
}  // namespace io

// `<dir>/spiece.model`: NotFound when absent, DataLoss when unreadable, Unimplemented when not a
// unigram model.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& dir);
// Cleaned, tokenized, EOS-terminated ids (≤ 512); InvalidArgument for malformed UTF-8.
absl::StatusOr<std::vector<int64_t>> Tokenize(const Tokenizer& tokenizer, const std::string& text);

// Thread-safe LRU of prompt embeddings keyed by (model id, prompt); holds at most `capacity`
// entries (0 disables caching). May be shared by several encoders of the same process.
class PromptCache {
 public:
  explicit PromptCache(size_t capacity) : capacity_(capacity) {}
  // The cached [L, dim] F32 tensor, or an undefined tensor on a miss.
  Tensor Get(const std::string& model_id, const std::string& prompt);
  void Put(const std::string& model_id, const std::string& prompt, const Tensor& value);
  size_t size() const;
  size_t hits() const;
  size_t misses() const;

 private:
  struct Entry {
    std::string key;
    Tensor value;  // [L, dim] host F32, never handed out (callers get clones)
  };
  static std::string Key(const std::string& model_id, const std::string& prompt);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t hits_ = 0;
  size_t misses_ = 0;
};

class TextEncoder {
 public:
  static constexpr const char* kWeightsPth = "models_t5_umt5-xxl-enc-bf16.pth";
  static constexpr const char* kWeightsSafetensors = "models_t5_umt5-xxl-enc-bf16.safetensors";
  static constexpr const char* kTokenizerDir = "google/umt5-xxl";
  static constexpr const char* kConfigFile = "turbovid.json";  // optional; object key "t5"
  static constexpr size_t kDefaultCacheEntries = 64;

  ~TextEncoder();

  // `<model_dir>/models_t5_umt5-xxl-enc-bf16.pth`, else the .safetensors one; NotFound naming both.
  static absl::StatusOr<std::string> WeightsPath(const std::string& model_dir);

  // Loads `<model_dir>/models_t5_umt5-xxl-enc-bf16.{pth,safetensors}` and the tokenizer in
  // `<model_dir>/google/umt5-xxl/`; the T5 config comes from `<model_dir>/turbovid.json` key "t5"
  // (default: full umT5-XXL). `cache` may be shared; null → a private cache of default size.
  static absl::StatusOr<std::unique_ptr<TextEncoder>> Load(
      const std::string& model_dir, Backend& backend, std::shared_ptr<PromptCache> cache = nullptr);

  absl::StatusOr<std::vector<int64_t>> Tokenize(const std::string& prompt) const;
  // Encoder states for the prompt's real tokens: [L, dim] host F32 (a private copy; cached).
  absl::StatusOr<Tensor> Encode(const std::string& prompt);

  // umT5 residency (docs/memory.md §3): Offload drops the weights from the device; the next
  // Encode that misses the prompt cache uploads them again from the checkpoint's host copy
  // (memory-mapped), and a hit needs no upload. resident() says whether they are on the device.
  void Offload();
  bool resident() const;

  const std::string& model_id() const { return model_id_; }
  const PromptCache& cache() const { return *cache_; }

 private:
  TextEncoder(std::unique_ptr<Tokenizer> tokenizer, std::unique_ptr<UmT5Encoder> model,
              std::string model_id, std::shared_ptr<PromptCache> cache);

  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<UmT5Encoder> model_;  // null while offloaded
  Backend* backend_ = nullptr;
  std::unique_ptr<T5Config> config_;
  std::unique_ptr<io::WeightSet> host_weights_;  // under a budget: the checkpoint, for re-uploads
  std::string weights_path_;
  std::string model_id_;  // weights path + backend: embeddings differ between backends
  std::shared_ptr<PromptCache> cache_;
  mutable std::mutex encode_mu_;  // one forward pass at a time on the backend; guards model_
};

}  // namespace turbovid::engine
