// StreamOutbox under every ordering of Push/Close/WriteDone/Cancel that gRPC allows, up to a depth:
// one write in flight, Finish once and never during a write, messages in order.
#include "server/stream_outbox.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace turbovid::server {
namespace {

using Outbox = StreamOutbox<std::string>;
using Action = Outbox::Action;

TEST(StreamOutboxTest, CancelWhileWriteInFlightKeepsTheBufferAndFinishesAfterIt) {
  Outbox outbox;
  ASSERT_EQ(outbox.Push("a"), Action::kStartWrite);
  const std::string* buffer = &outbox.in_flight();
  EXPECT_EQ(outbox.Push("b"), Action::kNone);
  EXPECT_EQ(outbox.Cancel(), Action::kNone);  // gRPC still owns "a": no Finish yet
  EXPECT_EQ(&outbox.in_flight(), buffer);
  EXPECT_EQ(*buffer, "a");
  EXPECT_EQ(outbox.queued(), 0u);
  EXPECT_EQ(outbox.WriteDone(false), Action::kFinish);
  EXPECT_EQ(outbox.finish_status().code(), absl::StatusCode::kCancelled);
  // Late callbacks and control-plane calls after the finish do nothing.
  EXPECT_EQ(outbox.WriteDone(false), Action::kNone);
  EXPECT_EQ(outbox.Cancel(), Action::kNone);
  EXPECT_EQ(outbox.Push("c"), Action::kNone);
  EXPECT_EQ(outbox.Close(absl::OkStatus()), Action::kNone);
}

TEST(StreamOutboxTest, CancelWhenIdleFinishesAtOnce) {
  Outbox outbox;
  EXPECT_EQ(outbox.Cancel(), Action::kFinish);
  EXPECT_EQ(outbox.Cancel(), Action::kNone);
}

TEST(StreamOutboxTest, CloseDrainsTheQueueThenFinishesWithItsStatus) {
  Outbox outbox;
  ASSERT_EQ(outbox.Push("a"), Action::kStartWrite);
  ASSERT_EQ(outbox.Push("b"), Action::kNone);
  ASSERT_EQ(outbox.Close(absl::InvalidArgumentError("bad worker")), Action::kNone);
  ASSERT_EQ(outbox.WriteDone(true), Action::kStartWrite);
  EXPECT_EQ(outbox.in_flight(), "b");
  ASSERT_EQ(outbox.WriteDone(true), Action::kFinish);
  EXPECT_EQ(outbox.finish_status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StreamOutboxTest, FailedWriteDropsTheQueue) {
  Outbox outbox;
  ASSERT_EQ(outbox.Push("a"), Action::kStartWrite);
  ASSERT_EQ(outbox.Push("b"), Action::kNone);
  EXPECT_EQ(outbox.WriteDone(false), Action::kFinish);
  EXPECT_EQ(outbox.finish_status().code(), absl::StatusCode::kUnavailable);
}

TEST(StreamOutboxTest, WriteDoneWithoutAWriteIsIgnored) {
  Outbox outbox;
  EXPECT_EQ(outbox.WriteDone(true), Action::kNone);
  EXPECT_EQ(outbox.WriteDone(false), Action::kNone);
  EXPECT_FALSE(outbox.finished());
}

// Plays every event sequence up to kDepth against a model of the gRPC side: OnWriteDone comes
// only for a started write (ok or not), OnCancel at most once, and checks each returned action.
class Explorer {
 public:
  static constexpr int kDepth = 7;
  enum Event { kPush, kClose, kWriteOk, kWriteFailed, kCancel, kNumEvents };

  void Run(std::vector<Event>& trace) {
    if (static_cast<int>(trace.size()) == kDepth) {
      Replay(trace, /*check_end=*/true);
      ++sequences_;
      return;
    }
    for (int e = 0; e < kNumEvents; ++e) {
      trace.push_back(static_cast<Event>(e));
      if (Replay(trace, /*check_end=*/false)) Run(trace);
      trace.pop_back();
    }
  }
  int sequences() const { return sequences_; }

 private:
  // Returns false when the sequence is not one gRPC can produce.
  bool Replay(const std::vector<Event>& trace, bool check_end) {
    Outbox outbox;
    bool grpc_writing = false, cancelled = false, finished = false;
    int pushed = 0;
    std::vector<std::string> written;
    auto apply = [&](Action action) {
      switch (action) {
        case Action::kNone:
          break;
        case Action::kStartWrite:
          EXPECT_FALSE(grpc_writing) << "two writes in flight";
          EXPECT_FALSE(finished) << "write after Finish";
          grpc_writing = true;
          written.push_back(outbox.in_flight());
          break;
        case Action::kFinish:
          EXPECT_FALSE(grpc_writing) << "Finish during a write";
          EXPECT_FALSE(finished) << "Finish twice";
          finished = true;
          break;
      }
    };
    for (Event e : trace) {
      switch (e) {
        case kPush:
          apply(outbox.Push(std::to_string(pushed++)));
          break;
        case kClose:
          apply(outbox.Close(absl::OkStatus()));
          break;
        case kWriteOk:
        case kWriteFailed:
          if (!grpc_writing) return false;
          grpc_writing = false;
          apply(outbox.WriteDone(e == kWriteOk));
          break;
        case kCancel:
          if (cancelled) return false;
          cancelled = true;
          apply(outbox.Cancel());
          break;
        case kNumEvents:
          return false;
      }
      EXPECT_EQ(outbox.writing(), grpc_writing);
    }
    for (size_t i = 0; i < written.size(); ++i) EXPECT_EQ(written[i], std::to_string(i));
    // Once cancelled with no write outstanding, the stream must have finished.
    if (check_end && cancelled && !grpc_writing) {
      EXPECT_TRUE(finished);
    }
    return true;
  }

  int sequences_ = 0;
};

TEST(StreamOutboxTest, EveryOrderingUpToDepthKeepsTheInvariants) {
  Explorer explorer;
  std::vector<Explorer::Event> trace;
  explorer.Run(trace);
  EXPECT_GT(explorer.sequences(), 1000);
}

}  // namespace
}  // namespace turbovid::server
