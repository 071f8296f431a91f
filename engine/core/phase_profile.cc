// PhaseProfile (see phase_profile.h).
#include "engine/core/phase_profile.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace turbovid::engine {

PhaseProfile::PhaseProfile(std::function<void()> sync)
    : sync_(std::move(sync)), last_(Clock::now()) {}

bool PhaseProfile::Enabled() {
  static const bool on = EnabledBy("TV_PIPELINE_PROFILE");
  return on;
}

bool PhaseProfile::EnabledBy(const char* env_var) {
  const char* v = std::getenv(env_var);
  return v != nullptr && std::string_view(v) == "1";
}

void PhaseProfile::Mark(std::string_view phase) {
  if (sync_) sync_();
  const Clock::time_point now = Clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
  last_ = now;
  std::lock_guard<std::mutex> lock(mu_);
  AddLocked(phase, ms);
}

void PhaseProfile::Skip() {
  if (sync_) sync_();
  last_ = Clock::now();
}

void PhaseProfile::Add(std::string_view phase, double ms) {
  std::lock_guard<std::mutex> lock(mu_);
  AddLocked(phase, ms);
}

void PhaseProfile::AddLocked(std::string_view phase, double ms) {
  auto it = index_.find(phase);
  if (it == index_.end()) {
    it = index_.emplace(std::string(phase), entries_.size()).first;
    entries_.push_back({std::string(phase), 0, 0});
  }
  Entry& e = entries_[it->second];
  e.ms += ms;
  ++e.calls;
}

bool PhaseProfile::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.empty();
}

double PhaseProfile::total_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  double sum = 0;
  for (const Entry& e : entries_) sum += e.ms;
  return sum;
}

void PhaseProfile::Print(std::FILE* out, const std::string& title, Order order,
                         double min_share) const {
  std::vector<Entry> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rows = entries_;
  }
  double sum = 0;
  for (const Entry& e : rows) sum += e.ms;
  if (order == Order::kSlowestFirst) {
    std::stable_sort(rows.begin(), rows.end(),
                     [](const Entry& a, const Entry& b) { return a.ms > b.ms; });
  }
  std::fprintf(out, "%s: %.1f ms\n", title.c_str(), sum);
  for (const Entry& e : rows) {
    if (e.ms < sum * min_share) continue;
    std::fprintf(out, "  %10.2f ms %7lld calls  %s\n", e.ms, static_cast<long long>(e.calls),
                 e.phase.c_str());
  }
}

PhaseProfile*& PhaseProfile::Current() {
  thread_local PhaseProfile* current = nullptr;
  return current;
}

}  // namespace turbovid::engine
