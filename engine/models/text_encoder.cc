// TextEncoder, PromptCache and the free-function tokenizer API over engine/text/tokenizer.h.
#include "engine/models/text_encoder.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/json.h"
#include "engine/io/weights.h"
#include "engine/models/t5.h"
#include "engine/text/tokenizer.h"

namespace turbovid::engine {
namespace {

// T5 config from `<model_dir>/turbovid.json` key "t5", or the umT5-XXL defaults.
absl::StatusOr<T5Config> ReadT5Config(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / TextEncoder::kConfigFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return T5Config{};
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto json = Json::Parse(ss.str());
  if (!json.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", json.status().message()));
  }
  const Json* t5 = json->Find("t5");
  if (t5 == nullptr) return T5Config{};
  auto config = T5Config::FromJson(*t5);
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", config.status().message()));
  }
  return config;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& dir) {
  return Tokenizer::Load(dir);
}

absl::StatusOr<std::vector<int64_t>> Tokenize(const Tokenizer& tokenizer, const std::string& text) {
  return tokenizer.Encode(text);
}

std::string PromptCache::Key(const std::string& model_id, const std::string& prompt) {
  // The model id never holds a NUL, so the split point is unambiguous.
  return absl::StrCat(model_id, std::string(1, '\0'), prompt);
}

Tensor PromptCache::Get(const std::string& model_id, const std::string& prompt) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(Key(model_id, prompt));
  if (it == index_.end()) {
    ++misses_;
    return Tensor();
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value.Clone();
}

void PromptCache::Put(const std::string& model_id, const std::string& prompt, const Tensor& value) {
  if (capacity_ == 0) return;
  std::string key = Key(model_id, prompt);
  Tensor copy = value.Clone();
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    it->second->value = std::move(copy);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Entry{key, std::move(copy)});
  index_.emplace(std::move(key), lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

size_t PromptCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t PromptCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

size_t PromptCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

TextEncoder::TextEncoder(std::unique_ptr<Tokenizer> tokenizer, std::unique_ptr<UmT5Encoder> model,
                         std::string model_id, std::shared_ptr<PromptCache> cache)
    : tokenizer_(std::move(tokenizer)),
      model_(std::move(model)),
      model_id_(std::move(model_id)),
      cache_(std::move(cache)) {}

TextEncoder::~TextEncoder() = default;

absl::StatusOr<std::string> TextEncoder::WeightsPath(const std::string& model_dir) {
  std::error_code ec;
  for (const char* name : {kWeightsPth, kWeightsSafetensors}) {
    const std::filesystem::path p = std::filesystem::path(model_dir) / name;
    if (std::filesystem::is_regular_file(p, ec)) return p.string();
  }
  return absl::NotFoundError(
      absl::StrCat(model_dir, ": neither ", kWeightsPth, " nor ", kWeightsSafetensors, " found"));
}

absl::StatusOr<std::unique_ptr<TextEncoder>> TextEncoder::Load(const std::string& model_dir,
                                                               Backend& backend,
                                                               std::shared_ptr<PromptCache> cache) {
  const std::filesystem::path dir(model_dir);
  TV_ASSIGN_OR_RETURN(T5Config config, ReadT5Config(dir));
  const std::string tokenizer_dir = (dir / kTokenizerDir).string();
  TV_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(tokenizer_dir));
  if (tokenizer->vocab_size() > config.vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat(tokenizer_dir, "/spiece.model: ", tokenizer->vocab_size(),
                     " pieces exceed the T5 embedding's ", config.vocab, " rows (t5.vocab)"));
  }
  TV_ASSIGN_OR_RETURN(std::string weights_path, WeightsPath(model_dir));
  TV_ASSIGN_OR_RETURN(io::WeightSet weights, io::WeightSet::Load(weights_path));
  if (weights.origin().empty()) weights.set_origin(weights_path);
  // Kept for re-uploads after Offload only under a memory budget (a .pth set may be heap
  // memory); without it a re-upload reads the checkpoint again.
  auto host_weights = backend.memory_limit() > 0 ? std::make_unique<io::WeightSet>(weights) : nullptr;
  TV_ASSIGN_OR_RETURN(std::unique_ptr<UmT5Encoder> model,
                      UmT5Encoder::Load(config, weights, backend));
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(weights_path, ec);
  std::string model_id =
      absl::StrCat(ec ? weights_path : canonical.string(), "|", std::string(backend.name()));
  if (cache == nullptr) cache = std::make_shared<PromptCache>(kDefaultCacheEntries);
  auto encoder = std::unique_ptr<TextEncoder>(new TextEncoder(
      std::move(tokenizer), std::move(model), std::move(model_id), std::move(cache)));
  encoder->backend_ = &backend;
  encoder->config_ = std::make_unique<T5Config>(config);
  encoder->host_weights_ = std::move(host_weights);
  encoder->weights_path_ = weights_path;
  return encoder;
}

void TextEncoder::Offload() {
  std::lock_guard<std::mutex> lock(encode_mu_);
  model_.reset();
}

bool TextEncoder::resident() const {
  std::lock_guard<std::mutex> lock(encode_mu_);
  return model_ != nullptr;
}

absl::StatusOr<std::vector<int64_t>> TextEncoder::Tokenize(const std::string& prompt) const {
  return engine::Tokenize(*tokenizer_, prompt);
}

absl::StatusOr<Tensor> TextEncoder::Encode(const std::string& prompt) {
  Tensor cached = cache_->Get(model_id_, prompt);
  if (cached.defined()) return cached;
  TV_ASSIGN_OR_RETURN(std::vector<int64_t> ids, Tokenize(prompt));
  Tensor context;
  {
    std::lock_guard<std::mutex> lock(encode_mu_);
    if (model_ == nullptr) {
      io::WeightSet weights;
      if (host_weights_ != nullptr) {
        weights = *host_weights_;  // Load takes tensors out of its set
      } else {
        TV_ASSIGN_OR_RETURN(weights, io::WeightSet::Load(weights_path_));
      }
      TV_ASSIGN_OR_RETURN(model_, UmT5Encoder::Load(*config_, weights, *backend_));
    }
    TV_ASSIGN_OR_RETURN(context, model_->Encode(ids));
  }
  cache_->Put(model_id_, prompt, context);
  return context;
}

}  // namespace turbovid::engine
