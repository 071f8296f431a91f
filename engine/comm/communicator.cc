// The equal-part collectives over the V forms, and the argument checks and the rank-order sum
// that the communicators share.
#include "engine/comm/communicator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace turbovid::engine::comm {

absl::Status Communicator::AllGather(const Tensor& in, Tensor& out) {
  TV_RETURN_IF_ERROR(internal::CheckTensor("all_gather", "in", in));
  return AllGatherV(in, out, std::vector<int64_t>(size(), in.numel()));
}

absl::Status Communicator::AllToAll(const Tensor& in, Tensor& out) {
  TV_RETURN_IF_ERROR(internal::CheckTensor("all_to_all", "in", in));
  if (in.numel() % size() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("all_to_all: in ", in.Describe(), " does not split into ", size(), " parts"));
  }
  const std::vector<int64_t> counts(size(), in.numel() / size());
  return AllToAllV(in, counts, out, counts);
}

absl::Status Communicator::NeighbourExchange(const Tensor& in, int64_t to_prev, int64_t to_next,
                                             Tensor& out, int64_t from_prev, int64_t from_next) {
  const int r = rank(), n = size();
  if ((r == 0 && (to_prev != 0 || from_prev != 0)) ||
      (r == n - 1 && (to_next != 0 || from_next != 0))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "neighbour_exchange: rank ", r, " of ", n, " has no ", r == 0 ? "previous" : "next",
        " rank but counts send ", to_prev, "/", to_next, ", receive ", from_prev, "/", from_next));
  }
  std::vector<int64_t> send(n, 0), recv(n, 0);
  if (r > 0) send[r - 1] = to_prev, recv[r - 1] = from_prev;
  if (r + 1 < n) send[r + 1] = to_next, recv[r + 1] = from_next;
  return AllToAllV(in, send, out, recv);
}

namespace internal {

std::vector<int64_t> Offsets(const std::vector<int64_t>& counts) {
  std::vector<int64_t> offsets(counts.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) offsets[i + 1] = offsets[i] + counts[i];
  return offsets;
}

absl::Status CheckTensor(const char* op, const char* what, const Tensor& t) {
  if (!t.defined()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is missing"));
  }
  return absl::OkStatus();
}

absl::Status CheckSumDType(const char* op, const Tensor& t, bool host) {
  const DType d = t.dtype();
  const bool ok = d == DType::kF32 || d == DType::kF64 || d == DType::kBF16 ||
                  (!host && (d == DType::kF16 || d == DType::kI32 || d == DType::kI64));
  if (!ok) {
    return absl::UnimplementedError(
        absl::StrCat(op, ": sum over ", t.Describe(), " is not supported"));
  }
  return absl::OkStatus();
}

absl::Status CheckOnHost(const char* op, const Tensor& t) {
  if (t.defined() && t.device() != Device::kCpu) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": ", t.Describe(), " is device memory; this communicator moves host memory"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status CheckCounts(const char* op, const char* what, const Communicator& c,
                         const std::vector<int64_t>& counts) {
  if (static_cast<int>(counts.size()) != c.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", counts.size(), " ", what, " for a group of ", c.size()));
  }
  for (int64_t n : counts) {
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": negative ", what, " [", absl::StrJoin(counts, ", "), "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckAllGatherV(const Communicator& c, const Tensor& in, const Tensor& out,
                             const std::vector<int64_t>& counts) {
  TV_RETURN_IF_ERROR(CheckTensor("all_gather", "in", in));
  TV_RETURN_IF_ERROR(CheckTensor("all_gather", "out", out));
  TV_RETURN_IF_ERROR(CheckCounts("all_gather", "counts", c, counts));
  if (in.dtype() != out.dtype()) {
    return absl::InvalidArgumentError(
        absl::StrCat("all_gather: in ", in.Describe(), " and out ", out.Describe(), " differ"));
  }
  const std::vector<int64_t> off = Offsets(counts);
  if (counts[c.rank()] != in.numel() || off.back() != out.numel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("all_gather: rank ", c.rank(), " sends ", in.Describe(), " into ",
                     out.Describe(), " with counts [", absl::StrJoin(counts, ", "), "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckReduceScatter(const Communicator& c, const Tensor& in, const Tensor& out) {
  TV_RETURN_IF_ERROR(CheckTensor("reduce_scatter", "in", in));
  TV_RETURN_IF_ERROR(CheckTensor("reduce_scatter", "out", out));
  if (in.dtype() != out.dtype() || in.numel() != out.numel() * c.size()) {
    return absl::InvalidArgumentError(absl::StrCat("reduce_scatter: in ", in.Describe(), " is not ",
                                                   c.size(), " parts of out ", out.Describe()));
  }
  return absl::OkStatus();
}

absl::Status CheckAllToAllV(const Communicator& c, const Tensor& in,
                            const std::vector<int64_t>& send_counts, const Tensor& out,
                            const std::vector<int64_t>& recv_counts) {
  TV_RETURN_IF_ERROR(CheckTensor("all_to_all", "in", in));
  TV_RETURN_IF_ERROR(CheckTensor("all_to_all", "out", out));
  TV_RETURN_IF_ERROR(CheckCounts("all_to_all", "send counts", c, send_counts));
  TV_RETURN_IF_ERROR(CheckCounts("all_to_all", "receive counts", c, recv_counts));
  if (in.dtype() != out.dtype()) {
    return absl::InvalidArgumentError(
        absl::StrCat("all_to_all: in ", in.Describe(), " and out ", out.Describe(), " differ"));
  }
  if (Offsets(send_counts).back() != in.numel() || Offsets(recv_counts).back() != out.numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "all_to_all: in ", in.Describe(), " / out ", out.Describe(), " do not hold send [",
        absl::StrJoin(send_counts, ", "), "] / receive [", absl::StrJoin(recv_counts, ", "), "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckRoot(const Communicator& c, int root) {
  if (root < 0 || root >= c.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("broadcast: root ", root, " outside a group of ", c.size()));
  }
  return absl::OkStatus();
}

void SumInRankOrder(DType dtype, const std::vector<const void*>& parts, int64_t n, void* dst) {
  switch (dtype) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) {
        double acc = 0;
        for (const void* p : parts) acc += static_cast<const float*>(p)[i];
        static_cast<float*>(dst)[i] = static_cast<float>(acc);
      }
      return;
    case DType::kF64:
      for (int64_t i = 0; i < n; ++i) {
        double acc = 0;
        for (const void* p : parts) acc += static_cast<const double*>(p)[i];
        static_cast<double*>(dst)[i] = acc;
      }
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        double acc = 0;
        for (const void* p : parts) acc += Bf16ToF32(static_cast<const uint16_t*>(p)[i]);
        static_cast<uint16_t*>(dst)[i] = F32ToBf16(static_cast<float>(acc));
      }
      return;
    case DType::kF16:
    case DType::kI8:
    case DType::kU8:
    case DType::kI32:
    case DType::kI64:
      return;  // refused by CheckSumDType(host) before any data moves
  }
}

}  // namespace internal
}  // namespace turbovid::engine::comm
