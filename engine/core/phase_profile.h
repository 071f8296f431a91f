// The engine's one wall-clock profiler: named phases with their total time and call counts.
// Three switches fill it: TV_PIPELINE_PROFILE=1 (a generation by phase: the pipeline installs one
// on its thread, the sampler, the DiT and the pipeline mark where each phase ends),
// TV_VAE_PROFILE=1 (the host side of one VAE decode) and TV_CUDA_PROFILE=1 (the CUDA backend
// times every op). Without an installed profile every ProfileMark is a no-op (one thread-local
// load).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace turbovid::engine {

class PhaseProfile {
 public:
  using Clock = std::chrono::steady_clock;
  // Print order: phases as first marked (a pipeline's story), or slowest first (per-op tables).
  enum class Order { kFirstMark, kSlowestFirst };

  // `sync` runs before each Mark and Skip (e.g. Backend::Synchronize), so that queued device work
  // is charged to the phase that queued it. That serialises host and device: profile runs only.
  explicit PhaseProfile(std::function<void()> sync = nullptr);
  PhaseProfile(const PhaseProfile&) = delete;
  PhaseProfile& operator=(const PhaseProfile&) = delete;

  // TV_PIPELINE_PROFILE=1 in the environment (read once).
  static bool Enabled();
  // `env_var` is "1" in the environment now (read on every call: tests switch it at run time).
  static bool EnabledBy(const char* env_var);

  // Charges the time since the previous Mark, Skip or construction to `phase`.
  void Mark(std::string_view phase);
  // Restarts the clock without charging anything (time spent outside the profiled work).
  void Skip();
  // Charges `ms` measured elsewhere to `phase` as one call; thread-safe (ops of several threads).
  void Add(std::string_view phase, double ms);

  bool empty() const;
  // Sum over all phases.
  double total_ms() const;

  // "title: <sum> ms", then one row per phase ("<ms> ms <n> calls  <phase>"), leaving out phases
  // below `min_share` of the sum.
  void Print(std::FILE* out, const std::string& title, Order order = Order::kFirstMark,
             double min_share = 0) const;

  // The profile the calling thread reports to (null: none).
  static PhaseProfile*& Current();

 private:
  struct Entry {
    std::string phase;
    double ms = 0;
    int64_t calls = 0;
  };
  void AddLocked(std::string_view phase, double ms);

  std::function<void()> sync_;
  Clock::time_point last_;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;                        // first-mark order
  std::map<std::string, size_t, std::less<>> index_;  // phase → entries_ index
};

// Installs `profile` (may be null) as the calling thread's current profile for its lifetime.
class ScopedPhaseProfile {
 public:
  explicit ScopedPhaseProfile(PhaseProfile* profile) : saved_(PhaseProfile::Current()) {
    PhaseProfile::Current() = profile;
  }
  ~ScopedPhaseProfile() { PhaseProfile::Current() = saved_; }
  ScopedPhaseProfile(const ScopedPhaseProfile&) = delete;
  ScopedPhaseProfile& operator=(const ScopedPhaseProfile&) = delete;

 private:
  PhaseProfile* saved_;
};

// Marks the end of `phase` on the calling thread's profile, if one is installed.
inline void ProfileMark(const char* phase) {
  if (PhaseProfile* p = PhaseProfile::Current()) p->Mark(phase);
}

}  // namespace turbovid::engine
