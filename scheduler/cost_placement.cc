// Cost- and deadline-aware placement: per-pool options, the ranking rules, one dispatch pass.
#include "scheduler/cost_placement.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_map>

namespace turbovid::scheduler {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// One pool's answer for one job.
struct Option {
  int pool = -1;
  bool free = false;  // a slot is free now (no wait)
  bool cold = false;  // the pool does not hold the variant warm
  double start = 0;
  double seconds = std::numeric_limits<double>::quiet_NaN();
  double completion = kInf;
  double cost = 0;
  const std::string* first_worker = nullptr;
};

bool Better(const Option& a, const Option& b, PlacementReason rule) {
  switch (rule) {
    case PlacementReason::kCheapestMeetingDeadline:
      // Equal cost: rather a free worker now than a wait, then the earlier finish.
      return std::forward_as_tuple(a.cost, !a.free, a.completion, a.cold, *a.first_worker) <
             std::forward_as_tuple(b.cost, !b.free, b.completion, b.cold, *b.first_worker);
    case PlacementReason::kEarliestCompletion:
      return std::forward_as_tuple(a.completion, !a.free, a.cost, a.cold, *a.first_worker) <
             std::forward_as_tuple(b.completion, !b.free, b.cost, b.cold, *b.first_worker);
    case PlacementReason::kCheapestIdle:
      // Without prices every cost is 0: warm first, then the faster pool (the rule before
      // prices existed).
      return std::forward_as_tuple(a.cost, a.cold, a.completion, *a.first_worker) <
             std::forward_as_tuple(b.cost, b.cold, b.completion, *b.first_worker);
  }
  return false;
}

PlacementChoice ToChoice(const Option& o, bool wait, PlacementReason reason) {
  PlacementChoice c;
  c.pool = o.pool;
  c.wait = wait;
  c.start = o.start;
  c.service_seconds = o.seconds;
  c.completion = o.completion;
  c.cost = o.cost;
  c.reason = reason;
  return c;
}

}  // namespace

const char* PlacementReasonName(PlacementReason reason) {
  switch (reason) {
    case PlacementReason::kCheapestMeetingDeadline:
      return "cheapest_meeting_deadline";
    case PlacementReason::kEarliestCompletion:
      return "earliest_completion";
    case PlacementReason::kCheapestIdle:
      return "cheapest_idle";
  }
  return "unknown";
}

PoolCalendar::PoolCalendar(const std::multiset<double>* busy_until) : busy_until_(busy_until) {
  if (busy_until_ != nullptr) next_ = busy_until_->begin();
}

double PoolCalendar::NextFree(double now) const {
  double t = kInf;
  if (busy_until_ != nullptr && next_ != busy_until_->end()) t = *next_;
  if (!added_.empty()) t = std::min(t, added_.front());
  return std::max(now, t);
}

void PoolCalendar::Reserve(double now, double seconds) {
  const bool from_busy = busy_until_ != nullptr && next_ != busy_until_->end() &&
                         (added_.empty() || *next_ <= added_.front());
  double t = kInf;
  if (from_busy) {
    t = *next_;
    ++next_;
  } else if (!added_.empty()) {
    t = added_.front();
    std::pop_heap(added_.begin(), added_.end(), std::greater<>());
    added_.pop_back();
  } else {
    return;
  }
  if (std::isfinite(seconds)) Occupy(std::max(now, t) + seconds);
}

void PoolCalendar::Occupy(double finish) {
  if (!std::isfinite(finish)) return;  // unknown: this worker's next free time is unknown too
  added_.push_back(finish);
  std::push_heap(added_.begin(), added_.end(), std::greater<>());
}

namespace {

// What depends only on (request, pool) during a pass: bit 0 the pool fits the job, bit 1 it does
// not hold the variant warm. Filled on a request's first look (pools' models do not change in a
// pass; only free slots do).
class FitMemo {
 public:
  explicit FitMemo(const std::vector<PoolView>& pools) : pools_(pools) {}
  uint8_t Get(const PlacementRequest& request, size_t pool) {
    auto [it, fresh] = memo_.try_emplace(&request);
    if (fresh) {
      it->second.resize(pools_.size());
      for (size_t p = 0; p < pools_.size(); ++p) it->second[p] = Flags(request, pools_[p]);
    }
    return it->second[pool];
  }
  static uint8_t Flags(const PlacementRequest& request, const PoolView& pool) {
    if (!Fits(request, pool.worker)) return 0;
    const bool cold = pool.worker.loaded.count({request.model_id, request.variant->name}) == 0;
    return cold ? 3 : 1;
  }

 private:
  const std::vector<PoolView>& pools_;
  std::unordered_map<const PlacementRequest*, std::vector<uint8_t>> memo_;
};

PlacementChoice Choose(double now, const PlacementJob& job, int job_index,
                       const std::vector<PoolView>& pools,
                       const std::vector<PoolCalendar>& calendars, const ServiceSecondsFn& seconds,
                       FitMemo* memo) {
  const bool has_deadline = std::isfinite(job.deadline);
  // The best option under each rule, kept on the fly.
  Option feasible, earliest, idle;
  for (size_t p = 0; p < pools.size(); ++p) {
    const PoolView& pool = pools[p];
    const uint8_t flags =
        memo != nullptr ? memo->Get(*job.request, p) : FitMemo::Flags(*job.request, pool);
    if ((flags & 1) == 0) continue;
    Option o;
    o.pool = static_cast<int>(p);
    o.free = pool.worker.free_slots > 0;
    if (!o.free && !has_deadline) continue;  // only a deadline buys a wait
    o.start = o.free ? now : calendars[p].NextFree(now);
    if (!std::isfinite(o.start)) continue;  // no worker of the pool is known to free up
    if (!o.free && job.behind_held && pool.workers > 0) {
      o.start += pool.held_seconds / pool.workers;  // the fluid wait behind the held jobs
    }
    const std::optional<double> s = seconds(job_index, static_cast<int>(p));
    const bool known = s.has_value() && *s >= 0 && std::isfinite(*s);
    if (known) {
      o.seconds = *s;
      o.completion = o.start + *s;
    }
    o.cost = pool.price_per_hour <= 0 ? 0 : known ? pool.price_per_hour * *s / 3600 : kInf;
    o.cold = (flags & 2) != 0;
    o.first_worker = &pool.worker.worker_id;
    if (!has_deadline) {
      if (idle.pool < 0 || Better(o, idle, PlacementReason::kCheapestIdle)) idle = o;
      continue;
    }
    if (o.completion <= job.deadline &&
        (feasible.pool < 0 || Better(o, feasible, PlacementReason::kCheapestMeetingDeadline))) {
      feasible = o;
    }
    if (earliest.pool < 0 || Better(o, earliest, PlacementReason::kEarliestCompletion)) {
      earliest = o;
    }
  }
  if (!has_deadline) {
    return idle.pool < 0 ? PlacementChoice{}
                         : ToChoice(idle, false, PlacementReason::kCheapestIdle);
  }
  if (feasible.pool >= 0) {
    return ToChoice(feasible, !feasible.free, PlacementReason::kCheapestMeetingDeadline);
  }
  if (earliest.pool >= 0) {
    return ToChoice(earliest, !earliest.free, PlacementReason::kEarliestCompletion);
  }
  return PlacementChoice{};
}

}  // namespace

PlacementChoice ChoosePool(double now, const PlacementJob& job, int job_index,
                           const std::vector<PoolView>& pools,
                           const std::vector<PoolCalendar>& calendars,
                           const ServiceSecondsFn& seconds) {
  return Choose(now, job, job_index, pools, calendars, seconds, nullptr);
}

std::vector<PlannedAssignment> PlanDispatch(double now, const std::vector<PlacementJob>& jobs,
                                            std::vector<PoolView>& pools,
                                            const ServiceSecondsFn& seconds,
                                            std::vector<PlannedAssignment>* holds) {
  if (holds != nullptr) holds->clear();
  std::vector<PoolCalendar> calendars;
  calendars.reserve(pools.size());
  int free_total = 0;
  for (const PoolView& pool : pools) {
    calendars.emplace_back(pool.busy_until);
    free_total += std::max(0, pool.worker.free_slots);
  }
  std::vector<PlannedAssignment> out;
  FitMemo memo(pools);
  for (size_t j = 0; j < jobs.size() && free_total > 0; ++j) {
    const PlacementChoice choice =
        Choose(now, jobs[j], static_cast<int>(j), pools, calendars, seconds, &memo);
    if (choice.pool < 0) continue;
    if (choice.wait) {
      calendars[choice.pool].Reserve(now, choice.service_seconds);
      if (holds != nullptr) holds->push_back(PlannedAssignment{static_cast<int>(j), choice});
      continue;
    }
    --pools[choice.pool].worker.free_slots;
    --free_total;
    calendars[choice.pool].Occupy(choice.completion);
    out.push_back(PlannedAssignment{static_cast<int>(j), choice});
  }
  return out;
}

std::optional<double> PoolServiceSeconds(const ServiceTimeModel& model,
                                         const PlacementRequest& request, int num_steps,
                                         const PoolView& pool) {
  if (request.variant == nullptr) return std::nullopt;
  const ServiceKey key{pool.worker.node_class, pool.layout,
                       JobShape{request.model_id, request.variant->name, request.width_pixels,
                                request.height_pixels, request.num_frames, num_steps}};
  std::optional<ServiceEstimate> estimate = model.Estimate(key);
  if (!estimate.has_value()) return std::nullopt;
  double seconds = estimate->seconds;
  if (pool.worker.loaded.count({request.model_id, request.variant->name}) == 0) {
    seconds += model.LoadSeconds(key).value_or(0);
  }
  return seconds;
}

}  // namespace turbovid::scheduler
