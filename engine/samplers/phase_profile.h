// Wall-clock profile of one generation by phase (TV_PIPELINE_PROFILE=1): the pipeline installs a
// PhaseProfile on its thread; the sampler, the DiT and the pipeline mark where each phase ends.
// Without an installed profile every mark is a no-op (one thread-local load).
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace turbovid::engine {

class PhaseProfile {
 public:
  using Clock = std::chrono::steady_clock;

  // `sync` runs before each mark (e.g. Backend::Synchronize), so that queued device work is
  // charged to the phase that queued it. That serialises host and device: profile runs only.
  explicit PhaseProfile(std::function<void()> sync = nullptr)
      : sync_(std::move(sync)), last_(Clock::now()) {}

  // TV_PIPELINE_PROFILE=1 in the environment (read once).
  static bool Enabled() {
    static const bool on = [] {
      const char* v = std::getenv("TV_PIPELINE_PROFILE");
      return v != nullptr && std::string(v) == "1";
    }();
    return on;
  }

  // Charges the time since the previous mark (or construction) to `phase`.
  void Mark(const char* phase) {
    if (sync_) sync_();
    const Clock::time_point now = Clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    for (Entry& e : entries_) {
      if (e.phase == phase) {
        e.ms += ms;
        ++e.calls;
        return;
      }
    }
    entries_.push_back({phase, ms, 1});
  }
  // Restarts the clock without charging anything (time spent outside the profiled work).
  void Skip() {
    if (sync_) sync_();
    last_ = Clock::now();
  }

  // Phases in first-mark order with their total ms and call counts, then the sum.
  void Print(std::FILE* out, const std::string& title) const {
    double sum = 0;
    for (const Entry& e : entries_) sum += e.ms;
    std::fprintf(out, "%s: %.1f ms (TV_PIPELINE_PROFILE=1, synchronised per phase)\n",
                 title.c_str(), sum);
    for (const Entry& e : entries_) {
      std::fprintf(out, "  %10.2f ms %5d calls  %s\n", e.ms, e.calls, e.phase.c_str());
    }
  }

  // The profile the calling thread reports to (null: none).
  static PhaseProfile*& Current() {
    thread_local PhaseProfile* current = nullptr;
    return current;
  }

 private:
  struct Entry {
    std::string phase;
    double ms;
    int calls;
  };
  std::function<void()> sync_;
  Clock::time_point last_;
  std::vector<Entry> entries_;
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
