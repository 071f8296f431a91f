// Arena: alignment, exhaustion, best fit, coalescing, and a seeded random alloc/free run checked
// against a byte-map reference (no overlap, every byte accounted for).
#include "engine/core/arena.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <vector>

namespace turbovid::engine {
namespace {

constexpr int64_t kA = Arena::kAlignment;

TEST(ArenaTest, AlignsEveryBlockAndRoundsCapacityDown) {
  Arena arena(10 * kA + 100);
  EXPECT_EQ(arena.capacity(), 10 * kA);
  for (int64_t bytes : {1, 255, 256, 257, 0, 1000}) {
    std::optional<int64_t> off = arena.Allocate(bytes);
    ASSERT_TRUE(off.has_value()) << bytes;
    EXPECT_EQ(*off % kA, 0) << bytes;
  }
  // 1 + 1 + 1 + 2 + 1 + 4 granules.
  EXPECT_EQ(arena.stats().in_use, 10 * kA);
  EXPECT_EQ(arena.stats().largest_free, 0);
  EXPECT_EQ(Arena::RoundUp(0), kA);
  EXPECT_EQ(Arena::RoundUp(kA + 1), 2 * kA);
}

TEST(ArenaTest, ExhaustionReturnsNulloptAndChangesNothing) {
  Arena arena(4 * kA);
  EXPECT_FALSE(arena.Allocate(4 * kA + 1).has_value());
  EXPECT_FALSE(arena.Allocate(-1).has_value());
  EXPECT_FALSE(arena.Allocate(int64_t{1} << 62).has_value());
  ASSERT_TRUE(arena.Allocate(3 * kA).has_value());
  EXPECT_FALSE(arena.Allocate(2 * kA).has_value());
  EXPECT_EQ(arena.stats().in_use, 3 * kA);
  EXPECT_EQ(arena.stats().largest_free, kA);
  EXPECT_TRUE(arena.Allocate(kA).has_value());
  EXPECT_FALSE(arena.Allocate(1).has_value());
  Arena empty(0);
  EXPECT_FALSE(empty.Allocate(0).has_value());
  EXPECT_EQ(empty.stats().largest_free, 0);
}

TEST(ArenaTest, FreeRejectsUnknownOffsets) {
  Arena arena(4 * kA);
  std::optional<int64_t> a = arena.Allocate(kA);
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(arena.Free(*a + kA));  // free space, not a block
  EXPECT_FALSE(arena.Free(7));
  EXPECT_TRUE(arena.Free(*a));
  EXPECT_FALSE(arena.Free(*a));  // double free
  EXPECT_EQ(arena.stats().in_use, 0);
}

TEST(ArenaTest, FragmentationThenCoalescingRestoresOneBlock) {
  Arena arena(8 * kA);
  std::vector<int64_t> offs;
  for (int i = 0; i < 8; ++i) offs.push_back(*arena.Allocate(kA));
  // Free every other block: 4 granules free, but no two adjacent.
  for (int i = 0; i < 8; i += 2) ASSERT_TRUE(arena.Free(offs[i]));
  EXPECT_EQ(arena.stats().in_use, 4 * kA);
  EXPECT_EQ(arena.stats().free_blocks, 4);
  EXPECT_EQ(arena.stats().largest_free, kA);
  EXPECT_FALSE(arena.Allocate(2 * kA).has_value());
  // Freeing block 1 merges 0, 1 and 2 (prev and next neighbours at once).
  ASSERT_TRUE(arena.Free(offs[1]));
  EXPECT_EQ(arena.stats().free_blocks, 3);
  EXPECT_EQ(arena.stats().largest_free, 3 * kA);
  std::optional<int64_t> three = arena.Allocate(3 * kA);
  ASSERT_TRUE(three.has_value());
  EXPECT_EQ(*three, offs[0]);
  ASSERT_TRUE(arena.Free(*three));
  for (int i : {3, 5, 7}) ASSERT_TRUE(arena.Free(offs[i]));
  const Arena::Stats s = arena.stats();
  EXPECT_EQ(s.in_use, 0);
  EXPECT_EQ(s.free_blocks, 1);
  EXPECT_EQ(s.largest_free, 8 * kA);
  EXPECT_EQ(s.peak, 8 * kA);
  arena.ResetPeak();
  EXPECT_EQ(arena.stats().peak, 0);
}

TEST(ArenaTest, BestFitTakesTheSmallestHole) {
  Arena arena(16 * kA);
  // Layout: [a:4][b:1][c:2][d:1][e:8]; free a (4 granules) and c (2 granules).
  const int64_t a = *arena.Allocate(4 * kA);
  const int64_t b = *arena.Allocate(kA);
  const int64_t c = *arena.Allocate(2 * kA);
  const int64_t d = *arena.Allocate(kA);
  ASSERT_TRUE(arena.Allocate(8 * kA).has_value());
  ASSERT_TRUE(arena.Free(a));
  ASSERT_TRUE(arena.Free(c));
  EXPECT_EQ(*arena.Allocate(2 * kA), c);  // exact hole, not the first one
  EXPECT_EQ(*arena.Allocate(kA), a);      // splits the 4-granule hole from its start
  EXPECT_EQ(*arena.Allocate(3 * kA), a + kA);
  EXPECT_GT(d, b);
}

TEST(ArenaTest, RandomAllocFreeMatchesAByteMap) {
  constexpr int64_t kGranules = 512;
  Arena arena(kGranules * kA);
  std::vector<int> owner(kGranules, -1);            // reference: which block holds each granule
  std::map<int64_t, std::pair<int64_t, int>> live;  // offset → (granules, id)
  std::mt19937_64 gen(1234);
  int next_id = 0;
  int64_t peak = 0, fails = 0;
  for (int it = 0; it < 20000; ++it) {
    const bool alloc = live.empty() || gen() % 100 < 55;
    if (alloc) {
      // Mostly small requests, some large; byte counts not multiples of the alignment.
      const int64_t bytes = gen() % 10 == 0 ? 1 + gen() % (64 * kA) : 1 + gen() % (4 * kA);
      const int64_t granules = (bytes + kA - 1) / kA;
      // Reference best fit: the smallest run of free granules that holds the request.
      int64_t best = -1, best_len = kGranules + 1;
      for (int64_t g = 0; g < kGranules;) {
        if (owner[g] >= 0) {
          ++g;
          continue;
        }
        int64_t e = g;
        while (e < kGranules && owner[e] < 0) ++e;
        if (e - g >= granules && e - g < best_len) {
          best = g;
          best_len = e - g;
        }
        g = e;
      }
      std::optional<int64_t> off = arena.Allocate(bytes);
      if (best < 0) {
        ASSERT_FALSE(off.has_value()) << "it " << it;
        ++fails;
        continue;
      }
      ASSERT_TRUE(off.has_value()) << "it " << it << " bytes " << bytes;
      ASSERT_EQ(*off % kA, 0);
      ASSERT_EQ(*off, best * kA) << "it " << it;  // same hole as the reference
      for (int64_t g = *off / kA; g < *off / kA + granules; ++g) {
        ASSERT_EQ(owner[g], -1) << "overlap at granule " << g;
        owner[g] = next_id;
      }
      live[*off] = {granules, next_id++};
    } else {
      auto victim = live.begin();
      std::advance(victim, static_cast<int64_t>(gen() % live.size()));
      ASSERT_TRUE(arena.Free(victim->first));
      for (int64_t g = victim->first / kA; g < victim->first / kA + victim->second.first; ++g) {
        ASSERT_EQ(owner[g], victim->second.second);
        owner[g] = -1;
      }
      live.erase(victim);
    }
    int64_t used = 0, largest = 0, run = 0, holes = 0;
    for (int64_t g = 0; g < kGranules; ++g) {
      used += owner[g] >= 0;
      run = owner[g] >= 0 ? 0 : run + 1;
      holes += owner[g] < 0 && (g == 0 || owner[g - 1] >= 0);
      largest = std::max(largest, run);
    }
    peak = std::max(peak, used * kA);
    const Arena::Stats s = arena.stats();
    ASSERT_EQ(s.in_use, used * kA);
    ASSERT_EQ(s.largest_free, largest * kA);
    ASSERT_EQ(s.free_blocks, holes);  // coalesced: one free block per hole
    ASSERT_EQ(s.live_blocks, static_cast<int64_t>(live.size()));
    ASSERT_EQ(s.peak, peak);
  }
  EXPECT_GT(fails, 0);  // the run did reach exhaustion
}

}  // namespace
}  // namespace turbovid::engine
