// NCCL communicator: one ncclComm_t per group on the backend's stream; the V collectives are
// grouped point-to-point sends and receives. Compiled only with CUDA and nccl.h (CMake); the
// library itself is loaded at run time.
#include "engine/comm/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::comm {

void DisableNvlinkMulticast() { setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/1); }

namespace {

// NCCL is loaded at run time (dlopen of libnccl.so.2), as cuBLASLt and NVML are: the worker
// binary starts where NCCL is absent (a CPU worker, one GPU) and only a multi-GPU group needs it.
// nccl.h gives the types and signatures; each entry point is looked up once.
struct NcclApi {
#define TV_NCCL_FN(name) decltype(&nccl##name) name = nullptr;
  TV_NCCL_FN(GetErrorString)
  TV_NCCL_FN(CommDestroy)
  TV_NCCL_FN(AllReduce)
  TV_NCCL_FN(AllGather)
  TV_NCCL_FN(GroupStart)
  TV_NCCL_FN(Send)
  TV_NCCL_FN(Recv)
  TV_NCCL_FN(GroupEnd)
  TV_NCCL_FN(ReduceScatter)
  TV_NCCL_FN(Broadcast)
  TV_NCCL_FN(CommGetAsyncError)
  TV_NCCL_FN(CommSplit)
  TV_NCCL_FN(CommUserRank)
  TV_NCCL_FN(CommCount)
  TV_NCCL_FN(CommAbort)
  TV_NCCL_FN(GetUniqueId)
  TV_NCCL_FN(CommInitRank)
#undef TV_NCCL_FN
  std::string error;  // why loading failed, empty when every entry point was found
};

const NcclApi& LoadNccl() {
  static const NcclApi api = [] {
    NcclApi a;
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = dlerror();
      a.error = absl::StrCat("cannot load libnccl.so.2 (", why != nullptr ? why : "?", ")");
      return a;
    }
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (fn == nullptr) {
        ok = false;
        a.error = absl::StrCat("libnccl.so.2 has no ", name);
      }
    };
#define TV_NCCL_SYM(name) sym(a.name, "nccl" #name);
    TV_NCCL_SYM(GetErrorString)
    TV_NCCL_SYM(CommDestroy)
    TV_NCCL_SYM(AllReduce)
    TV_NCCL_SYM(AllGather)
    TV_NCCL_SYM(GroupStart)
    TV_NCCL_SYM(Send)
    TV_NCCL_SYM(Recv)
    TV_NCCL_SYM(GroupEnd)
    TV_NCCL_SYM(ReduceScatter)
    TV_NCCL_SYM(Broadcast)
    TV_NCCL_SYM(CommGetAsyncError)
    TV_NCCL_SYM(CommSplit)
    TV_NCCL_SYM(CommUserRank)
    TV_NCCL_SYM(CommCount)
    TV_NCCL_SYM(CommAbort)
    TV_NCCL_SYM(GetUniqueId)
    TV_NCCL_SYM(CommInitRank)
#undef TV_NCCL_SYM
    if (!ok) dlclose(lib);
    return a;
  }();
  return api;
}

// The loaded API; only called once MakeNcclCommunicator found it complete.
const NcclApi& Nccl() { return LoadNccl(); }

absl::Status NcclStatus(ncclResult_t r, const char* what) {
  if (r == ncclSuccess || r == ncclInProgress) return absl::OkStatus();
  const std::string msg = absl::StrCat("nccl ", what, ": ", Nccl().GetErrorString(r));
  // A remote or system error is a peer (or its link) gone: retryable on another group.
  if (r == ncclRemoteError || r == ncclSystemError) return absl::UnavailableError(msg);
  if (r == ncclInvalidArgument || r == ncclInvalidUsage) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

absl::Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("nccl ", what, ": ", cudaGetErrorString(e)));
}

absl::StatusOr<ncclDataType_t> NcclType(DType d) {
  switch (d) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF64:
      return ncclFloat64;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kF16:
      return ncclFloat16;
    case DType::kI8:
      return ncclInt8;
    case DType::kU8:
      return ncclUint8;
    case DType::kI32:
      return ncclInt32;
    case DType::kI64:
      return ncclInt64;
  }
  return absl::InvalidArgumentError("nccl: unknown dtype");
}

absl::Status CheckDevice(const char* op, const Tensor& t) {
  if (t.defined() && t.device() != Device::kCuda) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl ", op, ": ", t.Describe(), " is host memory, want device memory"));
  }
  return absl::OkStatus();
}

// The communicators split from one another: Abort on any of them aborts them all (a dead peer
// leaves every group it belongs to stuck).
struct Family {
  std::mutex mu;
  bool aborted = false;
  std::vector<ncclComm_t> comms;  // the live ones
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, cudaStream_t stream,
                   std::shared_ptr<Family> family)
      : comm_(comm),
        rank_(rank),
        size_(size),
        device_(device),
        stream_(stream),
        family_(std::move(family)) {
    std::lock_guard<std::mutex> lock(family_->mu);
    family_->comms.push_back(comm_);
  }
  ~NcclCommunicator() override {
    std::lock_guard<std::mutex> lock(family_->mu);
    std::erase(family_->comms, comm_);
    // An aborted communicator was freed by ncclCommAbort.
    if (!family_->aborted) Nccl().CommDestroy(comm_);
  }

  std::string_view kind() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::Status AllReduceSum(Tensor& x) override {
    TV_RETURN_IF_ERROR(internal::CheckTensor("all_reduce", "x", x));
    TV_RETURN_IF_ERROR(CheckDevice("all_reduce", x));
    TV_RETURN_IF_ERROR(internal::CheckSumDType("all_reduce", x, /*host=*/false));
    TV_RETURN_IF_ERROR(Live());
    TV_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(x.dtype()));
    return NcclStatus(Nccl().AllReduce(x.raw(), x.raw(), x.numel(), type, ncclSum, comm_, stream_),
                      "all_reduce");
  }

  absl::Status AllGatherV(const Tensor& in, Tensor& out,
                          const std::vector<int64_t>& counts) override {
    TV_RETURN_IF_ERROR(internal::CheckAllGatherV(*this, in, out, counts));
    TV_RETURN_IF_ERROR(CheckDevice("all_gather", in));
    TV_RETURN_IF_ERROR(CheckDevice("all_gather", out));
    TV_RETURN_IF_ERROR(Live());
    TV_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(in.dtype()));
    bool equal = true;
    for (int64_t c : counts) equal = equal && c == counts[0];
    if (equal) {
      return NcclStatus(Nccl().AllGather(in.raw(), out.raw(), in.numel(), type, comm_, stream_),
                        "all_gather");
    }
    const size_t es = DTypeSize(in.dtype());
    const std::vector<int64_t> off = internal::Offsets(counts);
    char* dst = static_cast<char*>(out.raw());
    TV_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(dst + off[rank_] * es, in.raw(), in.nbytes(),
                                                  cudaMemcpyDeviceToDevice, stream_),
                                  "all_gather (own part)"));
    TV_RETURN_IF_ERROR(NcclStatus(Nccl().GroupStart(), "group start"));
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      TV_RETURN_IF_ERROR(NcclStatus(Nccl().Send(in.raw(), in.numel(), type, r, comm_, stream_),
                                    "all_gather send"));
      TV_RETURN_IF_ERROR(NcclStatus(
          Nccl().Recv(dst + off[r] * es, counts[r], type, r, comm_, stream_), "all_gather recv"));
    }
    return NcclStatus(Nccl().GroupEnd(), "all_gather");
  }

  absl::Status ReduceScatterSum(const Tensor& in, Tensor& out) override {
    TV_RETURN_IF_ERROR(internal::CheckReduceScatter(*this, in, out));
    TV_RETURN_IF_ERROR(CheckDevice("reduce_scatter", in));
    TV_RETURN_IF_ERROR(CheckDevice("reduce_scatter", out));
    TV_RETURN_IF_ERROR(internal::CheckSumDType("reduce_scatter", in, /*host=*/false));
    TV_RETURN_IF_ERROR(Live());
    TV_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(in.dtype()));
    return NcclStatus(
        Nccl().ReduceScatter(in.raw(), out.raw(), out.numel(), type, ncclSum, comm_, stream_),
        "reduce_scatter");
  }

  absl::Status AllToAllV(const Tensor& in, const std::vector<int64_t>& send_counts, Tensor& out,
                         const std::vector<int64_t>& recv_counts) override {
    TV_RETURN_IF_ERROR(internal::CheckAllToAllV(*this, in, send_counts, out, recv_counts));
    TV_RETURN_IF_ERROR(CheckDevice("all_to_all", in));
    TV_RETURN_IF_ERROR(CheckDevice("all_to_all", out));
    TV_RETURN_IF_ERROR(Live());
    TV_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(in.dtype()));
    const size_t es = DTypeSize(in.dtype());
    const std::vector<int64_t> soff = internal::Offsets(send_counts);
    const std::vector<int64_t> roff = internal::Offsets(recv_counts);
    const char* src = static_cast<const char*>(in.raw());
    char* dst = static_cast<char*>(out.raw());
    if (send_counts[rank_] != recv_counts[rank_]) {
      return absl::InvalidArgumentError(absl::StrCat("nccl all_to_all: rank ", rank_, " sends ",
                                                     send_counts[rank_], " to itself, expects ",
                                                     recv_counts[rank_]));
    }
    TV_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpyAsync(dst + roff[rank_] * es, src + soff[rank_] * es,
                                   send_counts[rank_] * es, cudaMemcpyDeviceToDevice, stream_),
                   "all_to_all (own part)"));
    TV_RETURN_IF_ERROR(NcclStatus(Nccl().GroupStart(), "group start"));
    for (int r = 0; r < size_; ++r) {
      // Empty parts are skipped on both sides (the counts agree): a neighbour exchange is only
      // the neighbours' sends and receives.
      if (r == rank_) continue;
      if (send_counts[r] > 0) {
        TV_RETURN_IF_ERROR(
            NcclStatus(Nccl().Send(src + soff[r] * es, send_counts[r], type, r, comm_, stream_),
                       "all_to_all send"));
      }
      if (recv_counts[r] > 0) {
        TV_RETURN_IF_ERROR(
            NcclStatus(Nccl().Recv(dst + roff[r] * es, recv_counts[r], type, r, comm_, stream_),
                       "all_to_all recv"));
      }
    }
    return NcclStatus(Nccl().GroupEnd(), "all_to_all");
  }

  absl::Status Broadcast(Tensor& x, int root) override {
    TV_RETURN_IF_ERROR(internal::CheckTensor("broadcast", "x", x));
    TV_RETURN_IF_ERROR(CheckDevice("broadcast", x));
    TV_RETURN_IF_ERROR(internal::CheckRoot(*this, root));
    TV_RETURN_IF_ERROR(Live());
    TV_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(x.dtype()));
    return NcclStatus(Nccl().Broadcast(x.raw(), x.raw(), x.numel(), type, root, comm_, stream_),
                      "broadcast");
  }

  absl::Status Barrier() override {
    TV_RETURN_IF_ERROR(Live());
    std::lock_guard<std::mutex> lock(scratch_mu_);
    if (scratch_ == nullptr) {
      TV_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&scratch_, sizeof(float)), "barrier scratch"));
    }
    TV_RETURN_IF_ERROR(NcclStatus(
        Nccl().AllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_), "barrier"));
    TV_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream_), "barrier"));
    ncclResult_t async = ncclSuccess;
    TV_RETURN_IF_ERROR(NcclStatus(Nccl().CommGetAsyncError(comm_, &async), "async error"));
    return NcclStatus(async, "barrier");
  }

  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) override {
    TV_RETURN_IF_ERROR(Live());
    ncclComm_t child = nullptr;
    TV_RETURN_IF_ERROR(NcclStatus(Nccl().CommSplit(comm_, color, key, &child, nullptr), "split"));
    int rank = 0, size = 0;
    TV_RETURN_IF_ERROR(NcclStatus(Nccl().CommUserRank(child, &rank), "split rank"));
    TV_RETURN_IF_ERROR(NcclStatus(Nccl().CommCount(child, &size), "split size"));
    return std::unique_ptr<Communicator>(
        std::make_unique<NcclCommunicator>(child, rank, size, device_, stream_, family_));
  }

  // ncclCommAbort ends the kernels of a collective that waits on a dead peer; safe from another
  // thread than the one blocked in it.
  void Abort() override {
    std::lock_guard<std::mutex> lock(family_->mu);
    if (family_->aborted) return;
    family_->aborted = true;
    for (ncclComm_t c : family_->comms) Nccl().CommAbort(c);
  }

 private:
  absl::Status Live() const {
    std::lock_guard<std::mutex> lock(family_->mu);
    if (family_->aborted) return absl::UnavailableError("nccl: communicator aborted (a peer died)");
    return absl::OkStatus();
  }

  ncclComm_t comm_;
  const int rank_, size_, device_;
  cudaStream_t stream_;
  std::shared_ptr<Family> family_;
  std::mutex scratch_mu_;
  void* scratch_ = nullptr;  // one float for Barrier (never freed: the context outlives it)
};

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Communicator& bootstrap,
                                                                   int device, void* cuda_stream) {
  DisableNvlinkMulticast();
  if (const NcclApi& api = LoadNccl(); !api.error.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("nccl: ", api.error, "; a multi-GPU worker group needs NCCL"));
  }
  TV_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "set device"));
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (bootstrap.rank() == 0) TV_RETURN_IF_ERROR(NcclStatus(Nccl().GetUniqueId(&id), "unique id"));
  Tensor bytes = Tensor::Zeros(DType::kU8, {static_cast<int64_t>(sizeof(id))});
  std::memcpy(bytes.raw(), &id, sizeof(id));
  TV_RETURN_IF_ERROR(bootstrap.Broadcast(bytes, 0));
  std::memcpy(&id, bytes.raw(), sizeof(id));
  ncclComm_t comm = nullptr;
  TV_RETURN_IF_ERROR(
      NcclStatus(Nccl().CommInitRank(&comm, bootstrap.size(), id, bootstrap.rank()), "init rank"));
  return std::unique_ptr<Communicator>(std::make_unique<NcclCommunicator>(
      comm, bootstrap.rank(), bootstrap.size(), device, static_cast<cudaStream_t>(cuda_stream),
      std::make_shared<Family>()));
}

}  // namespace turbovid::engine::comm
