// Collectives of the in-process and socket communicators with 1-4 ranks (threads), uneven parts,
// split groups, rank-order sums, mismatch detection, abort, and a peer process killed mid-call.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/status_matchers.h"
#include "engine/comm/communicator.h"
#include "engine/comm/in_process.h"
#include "engine/comm/parallel.h"
#include "engine/comm/socket_communicator.h"
#include "gtest/gtest.h"

namespace turbovid::engine::comm {
namespace {

using ::turbovid::common::testing::StatusIs;

using RankFn = std::function<absl::Status(int rank, Communicator& world)>;

// Runs fn on `size` threads over a group of the kind under test.
absl::Status RunSocketRanks(int size, const RankFn& fn) {
  const std::string name = RandomGroupName();
  std::vector<absl::Status> results(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      absl::StatusOr<std::unique_ptr<Communicator>> c = ConnectSocketGroup(name, r, size, 20);
      if (!c.ok()) {
        results[r] = c.status();
        return;
      }
      results[r] = fn(r, **c);
      if (!results[r].ok()) (*c)->Abort();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) {
    if (!s.ok() && !absl::IsUnavailable(s)) return s;
  }
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

class CommTest : public ::testing::TestWithParam<std::string> {
 protected:
  absl::Status Run(int size, const RankFn& fn) {
    return GetParam() == "socket" ? RunSocketRanks(size, fn) : RunInProcessRanks(size, fn);
  }
};

Tensor Iota(int64_t n, float start, float step = 1) {
  Tensor t = Tensor::Zeros(DType::kF32, {n});
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = start + step * static_cast<float>(i);
  return t;
}

#define TV_EXPECT(cond)                                                      \
  do {                                                                       \
    if (!(cond)) return absl::InternalError(absl::StrCat("failed: " #cond)); \
  } while (0)

TEST_P(CommTest, AllReduceSumsInRankOrderOnEveryRank) {
  for (int size : {1, 2, 3, 4}) {
    std::vector<Tensor> got(size);
    TV_ASSERT_OK(Run(size, [&](int r, Communicator& c) -> absl::Status {
      // Values whose float sum depends on the order: the result must not.
      Tensor x = Iota(1000, 1e7f * (r % 2 == 0 ? 1.f : -1.f), 0.1f * (r + 1));
      TV_RETURN_IF_ERROR(c.AllReduceSum(x));
      got[r] = x;
      return absl::OkStatus();
    }));
    for (int64_t i = 0; i < 1000; ++i) {
      double want = 0;
      for (int r = 0; r < size; ++r) {
        want += static_cast<double>(1e7f * (r % 2 == 0 ? 1.f : -1.f) +
                                    0.1f * (r + 1) * static_cast<float>(i));
      }
      ASSERT_EQ(got[0].data<float>()[i], static_cast<float>(want)) << "size " << size << " i " << i;
      for (int r = 1; r < size; ++r) {
        ASSERT_EQ(std::memcmp(got[r].raw(), got[0].raw(), got[0].nbytes()), 0);
      }
    }
  }
}

TEST_P(CommTest, AllGatherVConcatenatesUnevenParts) {
  for (int size : {1, 2, 3, 4}) {
    const std::vector<int64_t> counts = SplitCounts(10, size);
    TV_ASSERT_OK(Run(size, [&](int r, Communicator& c) -> absl::Status {
      const int64_t start = internal::Offsets(counts)[r];
      Tensor in = Iota(counts[r], static_cast<float>(start));
      Tensor out = Tensor::Zeros(DType::kF32, {10});
      TV_RETURN_IF_ERROR(c.AllGatherV(in, out, counts));
      for (int64_t i = 0; i < 10; ++i) TV_EXPECT(out.data<float>()[i] == static_cast<float>(i));
      return absl::OkStatus();
    }));
  }
}

TEST_P(CommTest, ReduceScatterAndAllToAllAndBroadcast) {
  for (int size : {1, 2, 4}) {
    TV_ASSERT_OK(Run(size, [&](int r, Communicator& c) -> absl::Status {
      // reduce-scatter: every rank holds [0, 1, ..., 2·size); rank r gets 2 elements × size.
      Tensor in = Iota(2 * size, 0.f);
      Tensor out = Tensor::Zeros(DType::kF32, {2});
      TV_RETURN_IF_ERROR(c.ReduceScatterSum(in, out));
      TV_EXPECT(out.data<float>()[0] == static_cast<float>(2 * r * size));
      TV_EXPECT(out.data<float>()[1] == static_cast<float>((2 * r + 1) * size));
      // all-to-all, uneven: rank r sends (j + 1) elements of value 100·r + j to rank j.
      std::vector<int64_t> send(size), recv(size, r + 1);
      std::vector<float> values;
      for (int j = 0; j < size; ++j) {
        send[j] = j + 1;
        for (int k = 0; k <= j; ++k) values.push_back(100.f * r + j);
      }
      Tensor a = Tensor::Zeros(DType::kF32, {static_cast<int64_t>(values.size())});
      std::memcpy(a.raw(), values.data(), a.nbytes());
      Tensor b = Tensor::Zeros(DType::kF32, {static_cast<int64_t>(size) * (r + 1)});
      TV_RETURN_IF_ERROR(c.AllToAllV(a, send, b, recv));
      for (int i = 0; i < size; ++i) {
        for (int k = 0; k <= r; ++k) TV_EXPECT(b.data<float>()[i * (r + 1) + k] == 100.f * i + r);
      }
      // broadcast from the last rank, bytes.
      Tensor bytes = Tensor::Zeros(DType::kU8, {5});
      if (r == size - 1) std::memcpy(bytes.raw(), "hello", 5);
      TV_RETURN_IF_ERROR(c.Broadcast(bytes, size - 1));
      TV_EXPECT(std::memcmp(bytes.raw(), "hello", 5) == 0);
      return c.Barrier();
    }));
  }
}

// Halo exchange: rank r sends 2 values (10r, 10r + 1) to r − 1 and 3 (10r + 5 …) to r + 1; the
// ends have one neighbour, and a neighbour that does not exist is refused.
TEST_P(CommTest, NeighbourExchangeMovesOnlyTheNeighboursParts) {
  for (int size : {2, 3, 4}) {
    TV_ASSERT_OK(Run(size, [&](int r, Communicator& c) -> absl::Status {
      const bool first = r == 0, last = r == size - 1;
      const int64_t to_prev = first ? 0 : 2, to_next = last ? 0 : 3;
      const int64_t from_prev = first ? 0 : 3, from_next = last ? 0 : 2;
      std::vector<float> values;
      if (!first) values.insert(values.end(), {10.f * r, 10.f * r + 1});
      if (!last) values.insert(values.end(), {10.f * r + 5, 10.f * r + 6, 10.f * r + 7});
      Tensor in = Tensor::Zeros(DType::kF32, {static_cast<int64_t>(values.size())});
      std::memcpy(in.raw(), values.data(), in.nbytes());
      Tensor out = Tensor::Zeros(DType::kF32, {from_prev + from_next});
      TV_RETURN_IF_ERROR(c.NeighbourExchange(in, to_prev, to_next, out, from_prev, from_next));
      const float* o = out.data<float>();
      if (!first) {
        for (int k = 0; k < 3; ++k) TV_EXPECT(o[k] == 10.f * (r - 1) + 5 + k);
      }
      if (!last) {
        for (int k = 0; k < 2; ++k) TV_EXPECT(o[from_prev + k] == 10.f * (r + 1) + k);
      }
      return absl::OkStatus();
    }));
  }
  TV_ASSERT_OK(Run(2, [&](int r, Communicator& c) -> absl::Status {
    Tensor one = Tensor::Zeros(DType::kF32, {1});
    absl::Status s = r == 0 ? c.NeighbourExchange(one, 1, 0, one, 1, 0)
                            : c.NeighbourExchange(one, 0, 1, one, 0, 1);
    TV_EXPECT(absl::IsInvalidArgument(s));
    TV_EXPECT(s.message().find("no ") != std::string_view::npos);
    return absl::OkStatus();
  }));
}

TEST_P(CommTest, SplitMakesTensorAndSequenceGroups) {
  TV_ASSERT_OK(Run(4, [&](int r, Communicator& c) -> absl::Status {
    TV_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> world, c.Split(0, r));
    TV_ASSIGN_OR_RETURN(std::unique_ptr<ParallelGroups> g,
                        ParallelGroups::Create(std::move(world), ParallelLayout{2, 2}));
    TV_EXPECT(g->tp_rank() == r % 2 && g->sp_rank() == r / 2);
    Tensor x = Iota(1, static_cast<float>(r));
    TV_RETURN_IF_ERROR(g->tp().AllReduceSum(x));  // {0,1} → 1, {2,3} → 5
    TV_EXPECT(x.data<float>()[0] == (r < 2 ? 1.f : 5.f));
    Tensor y = Iota(1, static_cast<float>(r));
    TV_RETURN_IF_ERROR(g->sp().AllReduceSum(y));  // {0,2} → 2, {1,3} → 4
    TV_EXPECT(y.data<float>()[0] == (r % 2 == 0 ? 2.f : 4.f));
    return g->world().Barrier();
  }));
}

TEST_P(CommTest, MismatchedCollectivesFailInsteadOfMisreading) {
  absl::Status s = Run(2, [&](int r, Communicator& c) -> absl::Status {
    Tensor x = Iota(r == 0 ? 4 : 5, 0.f);
    return c.AllReduceSum(x);
  });
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(absl::IsUnavailable(s)) << s;
}

TEST_P(CommTest, AFailingRankReleasesTheOthers) {
  absl::Status s = Run(3, [&](int r, Communicator& c) -> absl::Status {
    if (r == 1) return absl::DataLossError("rank 1 broke");
    Tensor x = Iota(8, 0.f);
    return c.AllReduceSum(x);  // would wait for rank 1 forever without the abort
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
}

INSTANTIATE_TEST_SUITE_P(Kinds, CommTest, ::testing::Values("in-process", "socket"));

TEST(SocketComm, APeerProcessKilledMidCollectiveFailsItUnavailable) {
  const std::string name = RandomGroupName();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Joins, then dies without a word while rank 0 waits in a collective.
    auto c = ConnectSocketGroup(name, 1, 2, 20);
    if (c.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    kill(getpid(), SIGKILL);
  }
  auto c = ConnectSocketGroup(name, 0, 2, 20);
  TV_ASSERT_OK(c.status());
  Tensor x = Iota(16, 0.f);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT((*c)->AllReduceSum(x), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST(SocketComm, RejectsBadNamesAndRanks) {
  EXPECT_THAT(ConnectSocketGroup("no/slash", 0, 1).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ConnectSocketGroup("ok", 2, 2).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A lone rank 1 of 2 gives up after the timeout instead of waiting forever.
  EXPECT_THAT(ConnectSocketGroup(RandomGroupName(), 1, 2, 0.2).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(ParallelLayout, Validates) {
  TV_EXPECT_OK(ValidateLayout({2, 4}));
  EXPECT_THAT(ValidateLayout({0, 1}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateLayout({4, 4}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(SplitCounts(10, 4), (std::vector<int64_t>{3, 3, 2, 2}));
}

}  // namespace
}  // namespace turbovid::engine::comm
