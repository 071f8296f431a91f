// Kernel-path choices the CUDA backend reads once from the environment when it starts and hands to
// the launchers (kernels/ itself reads no environment). Every default is the tuned choice; the
// others exist for parity checks, benchmarks and debugging.
#pragma once

namespace turbovid::kernels {

// Attention kernel (TV_ATTENTION=simple|flash|sm90); kAuto picks by shape and arch.
enum class AttentionPath : int { kAuto = 0, kSimple = 1, kFlash = 2, kSm90 = 3 };
// Variant of the sm_90a flash kernel (TV_FA_SM90=s2|s2pp|s3pp|s2ppp: stages, ping-pong,
// persistent); kAuto picks by key length.
enum class FaSm90Variant : int { kAuto = 0, kS2 = 1, kS2Pp = 2, kS3Pp = 3, kS2PpP = 4 };
// SLA sparse-branch kernel on an sm_90a device (TV_SLA_PATH=sm90|wgmma|portable, or
// TV_SLA_PORTABLE=1): kAuto and kSm90 take the TMA + wgmma kernel, kWgmma the cp.async wgmma one,
// kPortable the mma.sync one. Other devices and shapes ignore it.
enum class SlaPath : int { kAuto = 0, kSm90 = 1, kWgmma = 2, kPortable = 3 };
// SageSLA's attention kernel (TV_SAGESLA_PATH=wgmma|mma): kAuto and kWgmma take the sm_90a wgmma
// kernel (IGMMA Q·Kᵀ, QGMMA P·V) where it runs (an sm_90a device, the H100 build's numerics, D =
// 128), kMma the portable mma.sync one; elsewhere mma.sync. P's e4m3 codes are the same on both.
enum class SageSlaPath : int { kAuto = 0, kWgmma = 1, kMma = 2 };
// Conv3d kernel (TV_CONV3D_PATH=direct|gemm|halo|sm90); kAuto takes the fastest that accepts the
// shapes (kernels/conv.h).
enum class Conv3dPath : int { kAuto = 0, kDirect = 1, kGemm = 2, kHalo = 3, kSm90 = 4 };
// W8A8 int8 GEMM (TV_INT8_GEMM=mma|sm90): kAuto and kSm90 take the TMA + wgmma kernel on an sm_90a
// device (kernels/quant.h says which shapes), kMma the mma.sync one; elsewhere mma.sync. Every path
// gives the same bits.
enum class Int8GemmPath : int { kAuto = 0, kMma = 1, kSm90 = 2 };

struct KernelOptions {
  AttentionPath attention = AttentionPath::kAuto;
  FaSm90Variant fa_sm90 = FaSm90Variant::kAuto;
  SlaPath sla = SlaPath::kAuto;
  SageSlaPath sagesla = SageSlaPath::kAuto;
  Conv3dPath conv3d = Conv3dPath::kAuto;
  Int8GemmPath int8_gemm = Int8GemmPath::kAuto;
  // TV_CONV_SM90_DEBUG=1: the sm90 conv path prints its host-side failures to stderr.
  bool conv_sm90_debug = false;
  // TV_KERNELS=portable: no Hopper-only kernel anywhere (the paths an RTX 4090/5090 takes, run on
  // an H100 to emulate one): attention on the flash kernel, SLA on the portable one, conv3d off
  // sm90, the int8 GEMM and SageSLA's attention on mma.sync, and SageSLA with the sm_89/sm_120
  // build's numerics. Set before
  // the paths above are read, it turns each kAuto into its portable choice; a path named explicitly
  // still wins.
  bool portable = false;
  // TV_SAGESLA_LINEAR=mma|simple: SageSLA's output kernel (o_s + linear branch) on tensor cores
  // (the default) or the one-warp-per-row CUDA-core kernel (parity checks, timing).
  bool sage_linear_simple = false;
  // FP8 linears (docs/model-math.md §11.8). TV_FP8_FAST_ACCUM=1: cuBLASLt's fast accumulation
  // (no periodic fp32 promotion). TV_FP8_SCALING=epilogue: the GEMM writes the raw fp32
  // accumulator and a separate kernel applies both scale vectors and the bias (the path taken
  // anyway when cuBLASLt refuses per-row/per-column scale vectors).
  bool fp8_fast_accum = false;
  bool fp8_epilogue_scaling = false;
};

// Parse one switch's value, spelled as above; false (and *out unchanged) for any other value.
bool ParseAttentionPath(const char* value, AttentionPath* out);
bool ParseFaSm90Variant(const char* value, FaSm90Variant* out);
bool ParseSlaPath(const char* value, SlaPath* out);
bool ParseSageSlaPath(const char* value, SageSlaPath* out);
bool ParseConv3dPath(const char* value, Conv3dPath* out);
bool ParseInt8GemmPath(const char* value, Int8GemmPath* out);

}  // namespace turbovid::kernels
