// Key normalisation: TurboDiffusion training / wrapper names and diffusers names → official Wan
// names (docs/model-math.md §2.2 name map, §2.3 prefixes).
#include <string>
#include <string_view>
#include <utility>

#include "engine/io/weights.h"

namespace turbovid::engine::io {
namespace {

// First components of official Wan / umT5 / VAE names and of diffusers DiT names; `model.` is
// stripped only in front of one of these, so a module genuinely called `model` survives.
constexpr std::string_view kKnownRoots[] = {
    "blocks",
    "patch_embedding",
    "text_embedding",
    "time_embedding",
    "time_projection",
    "head",
    "img_emb",
    "condition_embedder",
    "proj_out",
    "scale_shift_table",
    "token_embedding",
    "norm",
    "encoder",
    "decoder",
    "conv1",
    "conv2",
    "rope",
};

// Diffusers → official, top level (diffusers convert_wan_to_diffusers.py, docs/model-math.md §2.2).
constexpr std::pair<std::string_view, std::string_view> kTopLevelMap[] = {
    {"condition_embedder.time_embedder.linear_1", "time_embedding.0"},
    {"condition_embedder.time_embedder.linear_2", "time_embedding.2"},
    {"condition_embedder.time_proj", "time_projection.1"},
    {"condition_embedder.text_embedder.linear_1", "text_embedding.0"},
    {"condition_embedder.text_embedder.linear_2", "text_embedding.2"},
    {"condition_embedder.image_embedder.norm1", "img_emb.proj.0"},
    {"condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1"},
    {"condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3"},
    {"condition_embedder.image_embedder.norm2", "img_emb.proj.4"},
    {"condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"},
    {"scale_shift_table", "head.modulation"},
    {"proj_out", "head.head"},
};

// Diffusers → official, inside `blocks.<i>.`. norm2 ↔ norm3: diffusers' norm2 is the affine
// cross-attention norm that Wan calls norm3.
constexpr std::pair<std::string_view, std::string_view> kBlockMap[] = {
    {"scale_shift_table", "modulation"},
    {"attn1.to_q", "self_attn.q"},
    {"attn1.to_k", "self_attn.k"},
    {"attn1.to_v", "self_attn.v"},
    {"attn1.to_out.0", "self_attn.o"},
    {"attn1", "self_attn"},
    {"attn2.to_q", "cross_attn.q"},
    {"attn2.to_k", "cross_attn.k"},
    {"attn2.to_v", "cross_attn.v"},
    {"attn2.to_out.0", "cross_attn.o"},
    {"attn2.add_k_proj", "cross_attn.k_img"},
    {"attn2.add_v_proj", "cross_attn.v_img"},
    {"attn2.norm_added_k", "cross_attn.norm_k_img"},
    {"attn2", "cross_attn"},
    {"ffn.net.0.proj", "ffn.0"},
    {"ffn.net.2", "ffn.2"},
    {"norm2", "norm3"},
    {"norm3", "norm2"},
};

// `key` equals `prefix` or continues with '.' after it.
bool HasComponentPrefix(std::string_view key, std::string_view prefix) {
  return key.starts_with(prefix) && (key.size() == prefix.size() || key[prefix.size()] == '.');
}

template <size_t N>
bool MapPrefix(std::string& key, size_t at,
               const std::pair<std::string_view, std::string_view> (&table)[N]) {
  std::string_view rest = std::string_view(key).substr(at);
  for (const auto& [from, to] : table) {
    if (HasComponentPrefix(rest, from)) {
      key.replace(at, from.size(), to);
      return true;
    }
  }
  return false;
}

// Length of "blocks.<digits>." at the start of `key`, or 0.
size_t BlockPrefixLength(std::string_view key) {
  if (!key.starts_with("blocks.")) return 0;
  size_t i = 7;
  while (i < key.size() && key[i] >= '0' && key[i] <= '9') ++i;
  return (i > 7 && i < key.size() && key[i] == '.') ? i + 1 : 0;
}

std::string StripWrappers(const std::string& key) {
  std::string k = key;
  const std::string_view infix = "_checkpoint_wrapped_module.";
  for (size_t pos; (pos = k.find(infix)) != std::string::npos;) k.erase(pos, infix.size());
  for (bool changed = true; changed;) {
    changed = false;
    if (k.starts_with("net.")) {
      k.erase(0, 4);
      changed = true;
    } else if (k.starts_with("model.")) {
      std::string_view rest = std::string_view(k).substr(6);
      for (std::string_view root : kKnownRoots) {
        if (HasComponentPrefix(rest, root)) {
          k.erase(0, 6);
          changed = true;
          break;
        }
      }
    }
  }
  return k;
}

}  // namespace

bool IsDiffusersKey(const std::string& raw) {
  const std::string key = StripWrappers(raw);
  if (HasComponentPrefix(key, "condition_embedder") || HasComponentPrefix(key, "proj_out") ||
      HasComponentPrefix(key, "scale_shift_table")) {
    return true;
  }
  const size_t b = BlockPrefixLength(key);
  if (b == 0) return false;
  std::string_view rest = std::string_view(key).substr(b);
  return HasComponentPrefix(rest, "attn1") || HasComponentPrefix(rest, "attn2") ||
         HasComponentPrefix(rest, "ffn.net") || HasComponentPrefix(rest, "scale_shift_table");
}

KeyStyle DetectKeyStyle(const std::vector<std::string>& keys) {
  for (const std::string& k : keys) {
    if (IsDiffusersKey(k)) return KeyStyle::kDiffusers;
  }
  return KeyStyle::kAuto;
}

std::string NormalizeKey(const std::string& key, KeyStyle style) {
  std::string k = StripWrappers(key);
  if (style != KeyStyle::kDiffusers && !IsDiffusersKey(k)) return k;
  if (const size_t b = BlockPrefixLength(k); b != 0) {
    MapPrefix(k, b, kBlockMap);
    return k;
  }
  MapPrefix(k, 0, kTopLevelMap);
  return k;
}

}  // namespace turbovid::engine::io
