// libFuzzer: the data.pkl VM on arbitrary bytes. Storages are zero-filled host tensors (capped at
// 1 MiB so the fuzzer measures the VM, not the allocator); returned views must stay in bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "engine/io/pickle.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

absl::StatusOr<turbovid::engine::Tensor> ZeroStorage(
    const turbovid::engine::io::PickleStorageRef& ref) {
  if (ref.numel > (1 << 20) / 8) return absl::DataLossError("storage too large for the fuzzer");
  return turbovid::engine::Tensor::Zeros(ref.dtype, {ref.numel});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view pkl(reinterpret_cast<const char*>(data), size);
  auto parsed = turbovid::engine::io::UnpickleStateDict(pkl, "fuzz/data.pkl", ZeroStorage);
  if (parsed.ok()) turbovid::fuzz::TouchAll(*parsed);
  return 0;
}
