// In-process communicator: a shared table of posted buffers and a generation barrier per group.
#include "engine/comm/in_process.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::comm {
namespace {

enum class OpCode {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kBroadcast,
  kBarrier,
  kSplit
};

const char* OpName(OpCode op) {
  switch (op) {
    case OpCode::kAllReduce:
      return "all_reduce";
    case OpCode::kAllGather:
      return "all_gather";
    case OpCode::kReduceScatter:
      return "reduce_scatter";
    case OpCode::kAllToAll:
      return "all_to_all";
    case OpCode::kBroadcast:
      return "broadcast";
    case OpCode::kBarrier:
      return "barrier";
    case OpCode::kSplit:
      return "split";
  }
  return "?";
}

struct Shared;

// What one rank posted for the collective in progress.
struct Post {
  OpCode op = OpCode::kBarrier;
  DType dtype = DType::kF32;
  const char* src = nullptr;                          // the rank's input bytes
  int64_t numel = 0;                                  // elements of src
  const std::vector<int64_t>* send_counts = nullptr;  // all_to_all
  int root = 0;
  int color = 0, key = 0;         // split
  std::shared_ptr<Shared> child;  // split: the new group, posted by its first member
};

// The state of one group, shared by its ranks.
struct Shared {
  explicit Shared(int n) : size(n), posts(n) {}
  const int size;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
  std::vector<Post> posts;

  // The group barrier; Unavailable once the group is aborted.
  absl::Status Wait() {
    std::unique_lock<std::mutex> lock(mu);
    if (aborted) return absl::UnavailableError("in-process group aborted (a rank failed)");
    const uint64_t gen = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return absl::OkStatus();
    }
    cv.wait(lock, [&] { return generation != gen || aborted; });
    if (generation == gen)
      return absl::UnavailableError("in-process group aborted (a rank failed)");
    return absl::OkStatus();
  }
  void Abort() {
    std::lock_guard<std::mutex> lock(mu);
    aborted = true;
    cv.notify_all();
  }
};

class InProcessCommunicator : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<Shared> shared, int rank)
      : shared_(std::move(shared)), rank_(rank) {}

  std::string_view kind() const override { return "in-process"; }
  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }

  absl::Status AllReduceSum(Tensor& x) override;
  absl::Status AllGatherV(const Tensor& in, Tensor& out,
                          const std::vector<int64_t>& counts) override;
  absl::Status ReduceScatterSum(const Tensor& in, Tensor& out) override;
  absl::Status AllToAllV(const Tensor& in, const std::vector<int64_t>& send_counts, Tensor& out,
                         const std::vector<int64_t>& recv_counts) override;
  absl::Status Broadcast(Tensor& x, int root) override;
  absl::Status Barrier() override { return shared_->Wait(); }
  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) override;
  void Abort() override {
    shared_->Abort();
    std::lock_guard<std::mutex> lock(children_mu_);
    for (const auto& c : children_) c->Abort();
  }

 private:
  // Posts `post` and waits until every rank has posted; then checks they called the same op.
  absl::Status Enter(Post post) {
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->posts[rank_] = std::move(post);
    }
    TV_RETURN_IF_ERROR(shared_->Wait());
    const Post& mine = shared_->posts[rank_];
    for (int r = 0; r < size(); ++r) {
      const Post& p = shared_->posts[r];
      if (p.op != mine.op || p.dtype != mine.dtype) {
        return absl::InternalError(absl::StrCat("in-process ", OpName(mine.op), ": rank ", rank_,
                                                " (", std::string(DTypeName(mine.dtype)),
                                                ") met rank ", r, " in ", OpName(p.op), " (",
                                                std::string(DTypeName(p.dtype)), ")"));
      }
    }
    return absl::OkStatus();
  }
  // Second barrier: nobody reads a rank's buffers after this.
  absl::Status Leave(absl::Status status) {
    absl::Status wait = shared_->Wait();
    return status.ok() ? wait : status;
  }
  const Post& post(int r) const { return shared_->posts[r]; }

  std::shared_ptr<Shared> shared_;
  const int rank_;
  std::mutex children_mu_;
  std::vector<std::shared_ptr<Shared>> children_;
};

absl::Status InProcessCommunicator::AllReduceSum(Tensor& x) {
  TV_RETURN_IF_ERROR(internal::CheckTensor("all_reduce", "x", x));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("all_reduce", x));
  TV_RETURN_IF_ERROR(internal::CheckSumDType("all_reduce", x, /*host=*/true));
  Post p;
  p.op = OpCode::kAllReduce;
  p.dtype = x.dtype();
  p.src = static_cast<const char*>(x.raw());
  p.numel = x.numel();
  TV_RETURN_IF_ERROR(Enter(p));
  absl::Status status;
  std::vector<const void*> parts;
  for (int r = 0; r < size(); ++r) {
    if (post(r).numel != x.numel()) {
      status =
          absl::InvalidArgumentError(absl::StrCat("all_reduce: rank ", rank_, " has ", x.numel(),
                                                  " elements, rank ", r, " ", post(r).numel));
    }
    parts.push_back(post(r).src);
  }
  // The sum goes to a buffer of our own first: the other ranks still read x.
  std::vector<char> sum(x.nbytes());
  if (status.ok()) internal::SumInRankOrder(x.dtype(), parts, x.numel(), sum.data());
  TV_RETURN_IF_ERROR(Leave(status));
  std::memcpy(x.raw(), sum.data(), sum.size());
  return absl::OkStatus();
}

absl::Status InProcessCommunicator::AllGatherV(const Tensor& in, Tensor& out,
                                               const std::vector<int64_t>& counts) {
  TV_RETURN_IF_ERROR(internal::CheckAllGatherV(*this, in, out, counts));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("all_gather", in));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("all_gather", out));
  Post p;
  p.op = OpCode::kAllGather;
  p.dtype = in.dtype();
  p.src = static_cast<const char*>(in.raw());
  p.numel = in.numel();
  TV_RETURN_IF_ERROR(Enter(p));
  const size_t es = DTypeSize(in.dtype());
  const std::vector<int64_t> off = internal::Offsets(counts);
  absl::Status status;
  for (int r = 0; r < size() && status.ok(); ++r) {
    if (post(r).numel != counts[r]) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "all_gather: rank ", r, " sent ", post(r).numel, " elements, counts say ", counts[r]));
      break;
    }
    std::memcpy(static_cast<char*>(out.raw()) + off[r] * es, post(r).src, counts[r] * es);
  }
  return Leave(status);
}

absl::Status InProcessCommunicator::ReduceScatterSum(const Tensor& in, Tensor& out) {
  TV_RETURN_IF_ERROR(internal::CheckReduceScatter(*this, in, out));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("reduce_scatter", in));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("reduce_scatter", out));
  TV_RETURN_IF_ERROR(internal::CheckSumDType("reduce_scatter", in, /*host=*/true));
  Post p;
  p.op = OpCode::kReduceScatter;
  p.dtype = in.dtype();
  p.src = static_cast<const char*>(in.raw());
  p.numel = in.numel();
  TV_RETURN_IF_ERROR(Enter(p));
  absl::Status status;
  const int64_t part = out.numel();
  const size_t es = DTypeSize(in.dtype());
  std::vector<const void*> parts;
  for (int r = 0; r < size(); ++r) {
    if (post(r).numel != in.numel()) {
      status = absl::InvalidArgumentError(absl::StrCat("reduce_scatter: rank ", r, " has ",
                                                       post(r).numel, " elements, rank ", rank_,
                                                       " ", in.numel()));
    }
    parts.push_back(post(r).src + rank_ * part * es);
  }
  // out may be part of in, which other ranks read: sum into our own buffer first.
  std::vector<char> sum(out.nbytes());
  if (status.ok()) internal::SumInRankOrder(in.dtype(), parts, part, sum.data());
  TV_RETURN_IF_ERROR(Leave(status));
  std::memcpy(out.raw(), sum.data(), sum.size());
  return absl::OkStatus();
}

absl::Status InProcessCommunicator::AllToAllV(const Tensor& in,
                                              const std::vector<int64_t>& send_counts, Tensor& out,
                                              const std::vector<int64_t>& recv_counts) {
  TV_RETURN_IF_ERROR(internal::CheckAllToAllV(*this, in, send_counts, out, recv_counts));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("all_to_all", in));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("all_to_all", out));
  Post p;
  p.op = OpCode::kAllToAll;
  p.dtype = in.dtype();
  p.src = static_cast<const char*>(in.raw());
  p.numel = in.numel();
  p.send_counts = &send_counts;
  TV_RETURN_IF_ERROR(Enter(p));
  const size_t es = DTypeSize(in.dtype());
  const std::vector<int64_t> roff = internal::Offsets(recv_counts);
  absl::Status status;
  for (int r = 0; r < size(); ++r) {
    const std::vector<int64_t>& theirs = *post(r).send_counts;
    if (theirs[rank_] != recv_counts[r]) {
      status = absl::InvalidArgumentError(absl::StrCat("all_to_all: rank ", r, " sends ",
                                                       theirs[rank_], " elements to rank ", rank_,
                                                       ", which expects ", recv_counts[r]));
      break;
    }
    const std::vector<int64_t> soff = internal::Offsets(theirs);
    std::memcpy(static_cast<char*>(out.raw()) + roff[r] * es, post(r).src + soff[rank_] * es,
                recv_counts[r] * es);
  }
  return Leave(status);
}

absl::Status InProcessCommunicator::Broadcast(Tensor& x, int root) {
  TV_RETURN_IF_ERROR(internal::CheckTensor("broadcast", "x", x));
  TV_RETURN_IF_ERROR(internal::CheckOnHost("broadcast", x));
  TV_RETURN_IF_ERROR(internal::CheckRoot(*this, root));
  Post p;
  p.op = OpCode::kBroadcast;
  p.dtype = x.dtype();
  p.src = static_cast<const char*>(x.raw());
  p.numel = x.numel();
  p.root = root;
  TV_RETURN_IF_ERROR(Enter(p));
  absl::Status status;
  if (post(root).numel != x.numel() || post(root).root != root) {
    status = absl::InvalidArgumentError(
        absl::StrCat("broadcast: rank ", rank_, " expects ", x.numel(), " elements from root ",
                     root, ", root ", post(root).root, " sends ", post(root).numel));
  } else if (rank_ != root) {
    std::memcpy(x.raw(), post(root).src, x.nbytes());
  }
  return Leave(status);
}

absl::StatusOr<std::unique_ptr<Communicator>> InProcessCommunicator::Split(int color, int key) {
  Post p;
  p.op = OpCode::kSplit;
  p.color = color;
  p.key = key;
  TV_RETURN_IF_ERROR(Enter(p));
  // Members of our color ordered by (key, rank); the first one makes the group.
  std::vector<std::pair<int, int>> members;
  for (int r = 0; r < size(); ++r) {
    if (post(r).color == color) members.emplace_back(post(r).key, r);
  }
  std::sort(members.begin(), members.end());
  int new_rank = 0;
  while (members[new_rank].second != rank_) ++new_rank;
  if (new_rank == 0) {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->posts[rank_].child = std::make_shared<Shared>(static_cast<int>(members.size()));
  }
  TV_RETURN_IF_ERROR(shared_->Wait());
  std::shared_ptr<Shared> child;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    child = shared_->posts[members[0].second].child;
  }
  // Everyone holds the child before a leader's next post can replace it.
  TV_RETURN_IF_ERROR(shared_->Wait());
  {
    std::lock_guard<std::mutex> lock(children_mu_);
    children_.push_back(child);
  }
  return std::unique_ptr<Communicator>(std::make_unique<InProcessCommunicator>(child, new_rank));
}

}  // namespace

std::vector<std::unique_ptr<Communicator>> MakeInProcessGroup(int size) {
  auto shared = std::make_shared<Shared>(size);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < size; ++r) out.push_back(std::make_unique<InProcessCommunicator>(shared, r));
  return out;
}

absl::Status RunInProcessRanks(
    int size, const std::function<absl::Status(int rank, Communicator& world)>& fn) {
  if (size < 1) return absl::InvalidArgumentError(absl::StrCat("ranks: ", size, " < 1"));
  std::vector<std::unique_ptr<Communicator>> comms = MakeInProcessGroup(size);
  std::vector<absl::Status> results(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      results[r] = fn(r, *comms[r]);
      if (!results[r].ok()) comms[r]->Abort();
    });
  }
  for (std::thread& t : threads) t.join();
  absl::Status first;
  for (const absl::Status& s : results) {
    if (s.ok()) continue;
    if (!absl::IsUnavailable(s)) return s;
    if (first.ok()) first = s;
  }
  return first;
}

}  // namespace turbovid::engine::comm
