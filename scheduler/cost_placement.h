// Cost- and deadline-aware placement (docs/fleet.md §2), shared by the scheduler's dispatch and
// turbovid-fleetsim. Workers are grouped into pools that placement cannot tell apart (node class,
// layout, memory, models, warm set). A job with a deadline goes to the pool expected to finish it
// by then at the lowest expected cost (price per hour x expected service time), waiting for a busy
// pool when that is cheapest and still in time; when no pool can make it, to the earliest expected
// completion. A job without a deadline takes the cheapest idle pool. Nothing is preempted. Times
// are seconds on one clock chosen by the caller (the scheduler: unix time; the simulator: its own).
#pragma once

#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "scheduler/placement.h"
#include "scheduler/service_time.h"

namespace turbovid::scheduler {

inline constexpr double kNoDeadline = std::numeric_limits<double>::infinity();

struct PoolView {
  // The pool's common description. worker.free_slots: free slots of the whole pool;
  // worker.worker_id: its smallest worker id (the last tie-break).
  WorkerView worker;
  std::string layout = "1gpu";
  double price_per_hour = 0;
  // When the pool's full workers are expected to free a slot, ascending; null = none busy.
  const std::multiset<double>* busy_until = nullptr;
  // Expected work of the queued jobs held for this pool, and the workers it is spread over (the
  // pool's, free or busy; the scheduler counts every worker of the pool's node class and
  // layout, whose held work it keeps together).
  double held_seconds = 0;
  int workers = 0;
};

struct PlacementJob {
  const PlacementRequest* request = nullptr;
  double deadline = kNoDeadline;  // complete by this time
  // Outside the pass's scan window (a new arrival behind a long queue): a busy pool starts it
  // only after the work already held for that pool, spread over the pool's workers. Without
  // this, jobs deeper in the queue than the window would only be placed once they reach it,
  // often too late for the deadline they could have met on another pool.
  bool behind_held = false;
};

enum class PlacementReason {
  kCheapestMeetingDeadline,  // the cheapest pool expected to finish by the deadline
  kEarliestCompletion,       // no pool can make the deadline: the earliest expected completion
  kCheapestIdle,             // no deadline: the cheapest pool with a free slot
};
const char* PlacementReasonName(PlacementReason reason);

struct PlacementChoice {
  int pool = -1;      // -1: no pool can run the job (or, without a deadline, none is idle)
  bool wait = false;  // the pool has no free slot: the job stays queued, held for it
  double start = 0;   // expected start
  double service_seconds = std::numeric_limits<double>::quiet_NaN();  // NaN: unknown
  double completion = std::numeric_limits<double>::infinity();
  double cost = 0;  // price per hour x service seconds / 3600 (inf: unknown at a price)
  PlacementReason reason = PlacementReason::kCheapestIdle;
};

// Expected seconds of candidate `job` on pool `pool` (model load of a cold pool included);
// nullopt when the model has no estimate.
using ServiceSecondsFn = std::function<std::optional<double>(int job, int pool)>;

// When a pool's busy workers free up during one dispatch pass, including the jobs this pass
// placed or held on it (a job held for a busy pool delays the next one held for it).
class PoolCalendar {
 public:
  explicit PoolCalendar(const std::multiset<double>* busy_until);
  // The earliest time a busy worker frees a slot (>= now); inf when none is busy.
  double NextFree(double now) const;
  // A held job takes the next worker to free up for `seconds` (NaN: unknown, the worker is gone).
  void Reserve(double now, double seconds);
  // A free worker started a job that ends at `finish`.
  void Occupy(double finish);

 private:
  const std::multiset<double>* busy_until_;
  std::multiset<double>::const_iterator next_;
  std::vector<double> added_;  // min-heap
};

// The pool for one job; `calendars` parallel to `pools`.
PlacementChoice ChoosePool(double now, const PlacementJob& job, int job_index,
                           const std::vector<PoolView>& pools,
                           const std::vector<PoolCalendar>& calendars,
                           const ServiceSecondsFn& seconds);

struct PlannedAssignment {
  int job = 0;  // index into the pass's jobs
  PlacementChoice choice;
};

// One dispatch pass over queued jobs in dispatch order (priority, then submit order). Returns
// the jobs to start now and takes their slots from `pools`. `holds` (optional) gets the jobs
// held for a busy pool while a slot was free somewhere (the caller keeps each pool's
// held_seconds from them; only time can change these placements).
std::vector<PlannedAssignment> PlanDispatch(double now, const std::vector<PlacementJob>& jobs,
                                            std::vector<PoolView>& pools,
                                            const ServiceSecondsFn& seconds,
                                            std::vector<PlannedAssignment>* holds = nullptr);

// The expected time of `job` on `pool` from `model` (plus the load time when the pool does not
// hold the variant warm and the model knows one); nullopt when unknown.
std::optional<double> PoolServiceSeconds(const ServiceTimeModel& model,
                                         const PlacementRequest& request, int num_steps,
                                         const PoolView& pool);

}  // namespace turbovid::scheduler
