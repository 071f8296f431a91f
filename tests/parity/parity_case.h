// Shared pieces of the backend-ops parity test: a Case builds its inputs' shapes and runs one op on
// whichever backend it is given; backend_ops_test.cc runs every case on the CPU reference and on
// CUDA and compares (see the comment there). Op families keep their cases in their own files.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "engine/core/backend.h"
#include "engine/core/ops.h"
#include "kernels/kernel_options.h"

namespace turbovid::engine::parity {

constexpr double kSlack = 2.0;
constexpr double kFloor = 1e-5;

// One input: its shape, whether it stays F32 on every backend (rope tables), and its value range.
struct Input {
  Shape shape;
  bool f32_table = false;
  float lo = -1.f, hi = 1.f;
};

constexpr int64_t kGuardElems = 64;
constexpr uint8_t kGuardByte = 0xA5;

// The backend plus the guarded buffers of one run: tensors are views into the middle of a larger
// allocation whose head and tail keep kGuardByte.
struct Env {
  Backend& b;
  std::vector<Tensor> wholes;  // the full guarded allocations, checked after the run

  // Host `host` (its dtype) placed in a guarded device buffer of the same dtype.
  absl::StatusOr<Tensor> Place(const Tensor& host) {
    const size_t es = DTypeSize(host.dtype());
    Tensor whole = Tensor::Zeros(host.dtype(), {host.numel() + 2 * kGuardElems});
    std::memset(whole.raw(), kGuardByte, whole.nbytes());
    std::memcpy(static_cast<char*>(whole.raw()) + kGuardElems * es, host.raw(), host.nbytes());
    TV_ASSIGN_OR_RETURN(Tensor dev, b.Upload(whole, host.dtype()));
    wholes.push_back(dev);
    return Tensor::Wrap(dev.storage(), dev.byte_offset() + kGuardElems * es, host.dtype(),
                        host.shape());
  }
  // A zero-filled guarded output in the compute dtype.
  absl::StatusOr<Tensor> Alloc(Shape s) {
    return Place(Tensor::Zeros(b.compute_dtype(), std::move(s)));
  }

  // Number of guard elements that no longer hold the pattern.
  absl::StatusOr<int64_t> BrokenGuards() {
    int64_t broken = 0;
    for (const Tensor& w : wholes) {
      Tensor pattern = Tensor::Zeros(w.dtype(), {1});
      std::memset(pattern.raw(), kGuardByte, pattern.nbytes());
      TV_ASSIGN_OR_RETURN(Tensor want, ToF32(pattern));
      TV_ASSIGN_OR_RETURN(Tensor got_raw, b.Download(w));
      TV_ASSIGN_OR_RETURN(Tensor got, ToF32(got_raw));
      const uint32_t* g = got.data<uint32_t>();
      const uint32_t p = want.data<uint32_t>()[0];
      const int64_t n = got.numel();
      for (int64_t i = 0; i < kGuardElems; ++i) broken += (g[i] != p) + (g[n - 1 - i] != p);
    }
    return broken;
  }
};

// Runs the op on inputs already placed on the backend, returns the device outputs.
using RunFn = std::function<absl::StatusOr<std::vector<Tensor>>(Env&, std::vector<Tensor>&)>;

struct Case {
  std::string name;
  size_t kind;
  std::vector<Input> inputs;
  RunFn run;
  // CUDA may be at most `slack` times further from the fp32 reference than naive bf16 is; a case
  // that raises it says why next to the number.
  double slack = kSlack;
};

// Runs `op` on `b`, on the CUDA backend with its kernel options changed by `change` for this op
// alone (forcing a kernel path, as TV_CONV3D_PATH or TV_SLA_PATH would for a whole process); other
// backends run it unchanged. Defined in backend_ops_test.cc.
absl::Status RunWithKernelOptions(Backend& b, const std::function<absl::Status()>& run,
                                  const std::function<void(kernels::KernelOptions&)>& change);

// Cases of the op families kept in their own files (each returns its list).
std::vector<Case> ConvCases();   // conv_cases.cc: Conv3d, ChannelRmsNorm, Upsample2x
std::vector<Case> SlaCases();    // sla_cases.cc: Sla
std::vector<Case> QuantCases();  // quant_cases.cc: Int8Linear
std::vector<Case> Fp8Cases();    // fp8_cases.cc: Fp8Quantize, Fp8Linear (codes and scales)
std::vector<Case> VideoCases();  // video_cases.cc: VideoToI420 (exact)

}  // namespace turbovid::engine::parity
