// LiveVideo: readers at any offset, waiters woken once by bytes or the end (never inline when
// readable already), blocking reads, the end's status, and LiveByteSource over it.
#include "server/live_video.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace turbovid::server {
namespace {

TEST(LiveVideoTest, ReadersFollowTheBytesAndTheEnd) {
  LiveVideo live;
  LiveVideo::Read r = live.ReadAt(0, 10);
  EXPECT_TRUE(r.data.empty());
  EXPECT_FALSE(r.ended);
  std::atomic<int> woken{0};
  const uint64_t id = live.WhenReadable(0, [&] { ++woken; });
  ASSERT_NE(id, 0u);
  live.Append("abcdef");
  EXPECT_EQ(woken.load(), 1);
  EXPECT_EQ(live.WhenReadable(3, [&] { ++woken; }), 0u);  // readable already: not stored
  EXPECT_EQ(live.ReadAt(2, 3).data, "cde");
  EXPECT_EQ(live.ReadAt(4, 10).data, "ef");
  EXPECT_EQ(live.ReadAt(4, 10).total, 0);
  const uint64_t later = live.WhenReadable(6, [&] { ++woken; });
  const uint64_t dropped = live.WhenReadable(6, [&] { woken += 100; });
  live.CancelWait(dropped);
  live.End(absl::OkStatus());
  EXPECT_EQ(woken.load(), 2);
  EXPECT_NE(later, 0u);
  live.Append("ignored");
  live.End(absl::CancelledError("too late"));  // the first end wins
  r = live.ReadAt(6, 10);
  EXPECT_TRUE(r.data.empty());
  EXPECT_TRUE(r.ended);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.total, 6);
}

TEST(LiveVideoTest, BlockingSourceWaitsForBytesAndEndsWithTheStatus) {
  auto live = std::make_shared<LiveVideo>();
  LiveByteSource source(live);
  EXPECT_EQ(source.size(), -1);
  EXPECT_EQ(source.live(), live);
  EXPECT_FALSE(source.Seek(3).ok());
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    live->Append("head");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    live->Append("tail");
    live->End(absl::CancelledError("job j was cancelled"));
  });
  std::string got;
  absl::StatusOr<std::string> piece;
  while ((piece = source.Read(3)).ok() && !piece->empty()) got += *piece;
  producer.join();
  EXPECT_EQ(got, "headtail");
  EXPECT_EQ(piece.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace turbovid::server
