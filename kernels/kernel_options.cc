// Value spellings of the kernel-path switches (kernel_options.h).
#include "kernels/kernel_options.h"

#include <cstring>

namespace turbovid::kernels {
namespace {

template <typename E, int N>
bool Parse(const char* value, const char* const (&names)[N], const E (&values)[N], E* out) {
  if (value == nullptr) return false;
  for (int i = 0; i < N; ++i) {
    if (std::strcmp(value, names[i]) == 0) {
      *out = values[i];
      return true;
    }
  }
  return false;
}

}  // namespace

bool ParseAttentionPath(const char* value, AttentionPath* out) {
  static constexpr const char* kNames[] = {"simple", "flash", "sm90"};
  static constexpr AttentionPath kValues[] = {AttentionPath::kSimple, AttentionPath::kFlash,
                                              AttentionPath::kSm90};
  return Parse(value, kNames, kValues, out);
}

bool ParseFaSm90Variant(const char* value, FaSm90Variant* out) {
  static constexpr const char* kNames[] = {"s2", "s2pp", "s3pp", "s2ppp"};
  static constexpr FaSm90Variant kValues[] = {FaSm90Variant::kS2, FaSm90Variant::kS2Pp,
                                              FaSm90Variant::kS3Pp, FaSm90Variant::kS2PpP};
  return Parse(value, kNames, kValues, out);
}

bool ParseSlaPath(const char* value, SlaPath* out) {
  static constexpr const char* kNames[] = {"sm90", "wgmma", "portable"};
  static constexpr SlaPath kValues[] = {SlaPath::kSm90, SlaPath::kWgmma, SlaPath::kPortable};
  return Parse(value, kNames, kValues, out);
}

bool ParseSageSlaPath(const char* value, SageSlaPath* out) {
  static constexpr const char* kNames[] = {"wgmma", "mma"};
  static constexpr SageSlaPath kValues[] = {SageSlaPath::kWgmma, SageSlaPath::kMma};
  return Parse(value, kNames, kValues, out);
}

bool ParseConv3dPath(const char* value, Conv3dPath* out) {
  static constexpr const char* kNames[] = {"direct", "gemm", "halo", "sm90"};
  static constexpr Conv3dPath kValues[] = {Conv3dPath::kDirect, Conv3dPath::kGemm,
                                           Conv3dPath::kHalo, Conv3dPath::kSm90};
  return Parse(value, kNames, kValues, out);
}

bool ParseInt8GemmPath(const char* value, Int8GemmPath* out) {
  static constexpr const char* kNames[] = {"mma", "sm90"};
  static constexpr Int8GemmPath kValues[] = {Int8GemmPath::kMma, Int8GemmPath::kSm90};
  return Parse(value, kNames, kValues, out);
}

}  // namespace turbovid::kernels
