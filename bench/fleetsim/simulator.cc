// The event loop (arrivals, completions, dispatch ticks while jobs are held, autoscaling samples),
// per-class accounting and the text and JSON reports.
#include "bench/fleetsim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <queue>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/cost_placement.h"
#include "scheduler/job_queue.h"

namespace turbovid::fleetsim {
namespace {

using scheduler::ClassCapacity;
using scheduler::JobQueue;
using scheduler::PlacementJob;
using scheduler::PoolView;
using scheduler::QueueEntry;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Pool {
  std::vector<int> free;             // idle worker ids
  std::multiset<double> busy_until;  // expected finish of the busy workers
  std::vector<double> latencies;
  ClassReport report;
  scheduler::DecayingRate offered;
  std::vector<double> desired;  // autoscaling samples
};

struct Worker {
  int pool = 0;
  int job = -1;
  std::multiset<double>::iterator expected;  // its entry in the pool's busy_until
};

struct Job {
  double arrival = 0;
  double deadline = kInf;  // absolute
  int shape = 0;
  int priority = 0;
  int held_pool = -1;  // the pool its last placement holds it for, -1 = none
  double held_seconds = 0;
};

class Simulation {
 public:
  Simulation(const Workload& workload, const FleetSpec& fleet,
             const scheduler::ServiceTimeModel& model, const scheduler::ModelCatalog& catalog,
             const SimOptions& options)
      : workload_(workload), options_(options), rng_(options.seed) {
    const std::vector<ClassCapacity> all = scheduler::CatalogClassCapacity(catalog, model);
    for (const ClassCapacity& c : all) {
      auto count = fleet.workers.find(c.probe.node_class);
      if (count == fleet.workers.end()) continue;
      PoolView view;
      view.worker = c.probe;
      view.worker.loaded = c.probe.variants;  // every model warm
      view.worker.gpu_count = 1;              // one GPU per simulated worker
      auto memory = fleet.memory_bytes.find(c.probe.node_class);
      view.worker.memory_bytes = memory == fleet.memory_bytes.end() ? 0 : memory->second;
      view.worker.free_slots = count->second;
      view.workers = count->second;
      view.price_per_hour = c.price_per_hour;
      views_.push_back(view);
      capacity_.push_back(c);
      Pool pool{{}, {}, {}, {}, scheduler::DecayingRate(options.load_window_seconds), {}};
      pool.report.node_class = c.probe.node_class;
      pool.report.workers = count->second;
      pool.report.price_per_hour = c.price_per_hour;
      for (int i = 0; i < count->second; ++i) {
        pool.free.push_back(static_cast<int>(workers_.size()));
        workers_.push_back(Worker{static_cast<int>(pools_.size()), -1, {}});
      }
      pools_.push_back(std::move(pool));
    }
    for (size_t p = 0; p < views_.size(); ++p) views_[p].busy_until = &pools_[p].busy_until;
    // Expected seconds per (shape, pool) from the model, once: NaN when unknown or unfit.
    seconds_.assign(workload.shapes.size() * views_.size(),
                    std::numeric_limits<double>::quiet_NaN());
    servable_.assign(workload.shapes.size(), false);
    for (size_t s = 0; s < workload.shapes.size(); ++s) {
      for (size_t p = 0; p < views_.size(); ++p) {
        if (!scheduler::Fits(workload.shapes[s].request, views_[p].worker)) continue;
        const auto e = model.Estimate(scheduler::ServiceKey{
            views_[p].worker.node_class, views_[p].layout, workload.shapes[s].shape});
        if (!e.has_value()) continue;
        seconds_[s * views_.size() + p] = e->seconds;
        servable_[s] = servable_[s] || pools_[p].report.workers > 0;
      }
    }
    const double cv2 = options.jitter_cv * options.jitter_cv;
    sigma_ = std::sqrt(std::log1p(cv2));
  }

  SimReport Run();

 private:
  std::optional<double> Seconds(int shape, int pool) const {
    const double s = seconds_[static_cast<size_t>(shape) * views_.size() + pool];
    if (std::isnan(s)) return std::nullopt;
    return s;
  }
  // False when no class of the fleet can run the job (dropped).
  bool Arrive(int index);
  void Complete(int worker, double now);
  // Returns the jobs held for a busy pool while another had a free slot. `arrived`: the job
  // that just arrived (evaluated behind the held work when it is beyond the scan window).
  int Dispatch(double now, int64_t arrived);
  // Moves a queued job's hold (pool -1: none) and the pools' held work with it.
  void Hold(Job& job, int pool, double seconds);
  void Sample(double now);
  SimReport Finish(double wall_seconds);

  const Workload& workload_;
  const SimOptions& options_;
  std::mt19937_64 rng_;
  double sigma_ = 0;
  std::vector<PoolView> views_;
  std::vector<ClassCapacity> capacity_;
  std::vector<Pool> pools_;
  std::vector<Worker> workers_;
  std::vector<double> seconds_;
  std::vector<bool> servable_;
  std::vector<Job> jobs_;
  std::map<std::string, JobQueue> queues_;  // by model, as the scheduler
  int64_t queued_ = 0;
  using Event = std::pair<double, int>;  // (finish, worker)
  std::priority_queue<Event, std::vector<Event>, std::greater<>> done_;
  std::vector<double> latencies_;
  int64_t unservable_ = 0, deadline_jobs_ = 0, deadline_misses_ = 0, passes_ = 0;
  double first_arrival_ = kInf, last_finish_ = 0;
};

bool Simulation::Arrive(int index) {
  const Arrival& a = workload_.arrivals[index];
  if (!servable_[a.shape]) {
    ++unservable_;
    return false;
  }
  Job& job = jobs_[index];
  job.arrival = a.time;
  job.deadline = a.deadline_seconds > 0 ? a.time + a.deadline_seconds : kInf;
  job.shape = a.shape;
  job.priority = a.priority;
  first_arrival_ = std::min(first_arrival_, a.time);
  const std::string& model = workload_.shapes[a.shape].shape.model_id;
  queues_[model].Push(QueueEntry{a.priority, index, std::to_string(index)});
  ++queued_;
  // The offered load behind the autoscaling signal, routed as the scheduler routes it.
  double s = 0;
  const int c = scheduler::RouteJob(
      a.time, PlacementJob{&workload_.shapes[a.shape].request, job.deadline}, 0, capacity_,
      [&](int, int cls) { return Seconds(a.shape, cls); }, options_.autoscale, &s);
  if (c >= 0) pools_[c].offered.Add(a.time, s);
  return true;
}

void Simulation::Complete(int w, double now) {
  Worker& worker = workers_[w];
  Pool& pool = pools_[worker.pool];
  const Job& job = jobs_[worker.job];
  const double latency = now - job.arrival;
  latencies_.push_back(latency);
  pool.latencies.push_back(latency);
  ++pool.report.jobs;
  if (std::isfinite(job.deadline)) {
    ++deadline_jobs_;
    if (now > job.deadline) ++deadline_misses_;
  }
  last_finish_ = std::max(last_finish_, now);
  pool.busy_until.erase(worker.expected);
  pool.free.push_back(w);
  ++views_[worker.pool].worker.free_slots;
  worker.job = -1;
}

void Simulation::Hold(Job& job, int pool, double seconds) {
  if (job.held_pool >= 0) {
    double& held = views_[job.held_pool].held_seconds;
    held = std::max(0.0, held - job.held_seconds);
  }
  job.held_pool = pool;
  job.held_seconds = pool >= 0 && std::isfinite(seconds) ? seconds : 0;
  if (pool >= 0) views_[pool].held_seconds += job.held_seconds;
}

int Simulation::Dispatch(double now, int64_t arrived) {
  if (queued_ == 0) return 0;
  int free_total = 0;
  for (const PoolView& v : views_) free_total += v.worker.free_slots;
  if (free_total == 0) return 0;
  ++passes_;
  std::vector<QueueEntry> order = scheduler::DispatchOrder(queues_);
  std::vector<PlacementJob> candidates;
  candidates.reserve(order.size() + 1);
  bool arrived_in_window = false;
  for (const QueueEntry& e : order) {
    const Job& job = jobs_[e.seq];
    candidates.push_back(PlacementJob{&workload_.shapes[job.shape].request, job.deadline});
    arrived_in_window = arrived_in_window || e.seq == arrived;
  }
  if (arrived >= 0 && !arrived_in_window) {
    const Job& job = jobs_[arrived];
    order.push_back(QueueEntry{job.priority, arrived, std::to_string(arrived)});
    candidates.push_back(
        PlacementJob{&workload_.shapes[job.shape].request, job.deadline, /*behind_held=*/true});
  }
  std::vector<scheduler::PlannedAssignment> holds;
  const auto plan = scheduler::PlanDispatch(
      now, candidates, views_, [&](int j, int p) { return Seconds(jobs_[order[j].seq].shape, p); },
      &holds);
  for (const scheduler::PlannedAssignment& h : holds) {
    Hold(jobs_[order[h.job].seq], h.choice.pool, h.choice.service_seconds);
  }
  for (const scheduler::PlannedAssignment& planned : plan) {
    const QueueEntry& entry = order[planned.job];
    Job& job = jobs_[entry.seq];
    Hold(job, -1, 0);
    Pool& pool = pools_[planned.choice.pool];
    const int w = pool.free.back();
    pool.free.pop_back();
    queues_[workload_.shapes[job.shape].shape.model_id].Remove(entry.priority, entry.seq);
    --queued_;
    double actual = planned.choice.service_seconds;
    if (sigma_ > 0) {
      actual *= std::exp(sigma_ * std::normal_distribution<double>()(rng_) - sigma_ * sigma_ / 2);
    }
    Worker& worker = workers_[w];
    worker.job = static_cast<int>(entry.seq);
    worker.expected = pool.busy_until.insert(planned.choice.completion);
    pool.report.busy_seconds += actual;
    pool.report.busy_cost += pool.report.price_per_hour * actual / 3600;
    done_.push({now + actual, w});
  }
  return static_cast<int>(holds.size());
}

void Simulation::Sample(double now) {
  std::vector<PlacementJob> queued;
  std::vector<int> shapes;
  for (const auto& [model, queue] : queues_) {
    for (const QueueEntry& e : queue.Head(queue.size())) {
      const Job& job = jobs_[e.seq];
      queued.push_back(PlacementJob{&workload_.shapes[job.shape].request, job.deadline});
      shapes.push_back(job.shape);
    }
  }
  std::vector<scheduler::ClassLoad> loads(pools_.size());
  for (size_t p = 0; p < pools_.size(); ++p) {
    for (double until : pools_[p].busy_until) {
      loads[p].running_remaining_seconds += std::max(0.0, until - now);
    }
    loads[p].busy_workers = static_cast<int>(pools_[p].busy_until.size());
    loads[p].offered_load = pools_[p].offered.Value(now);
  }
  const auto demand = scheduler::DesiredWorkers(
      now, queued, capacity_, loads, [&](int j, int p) { return Seconds(shapes[j], p); },
      options_.autoscale);
  for (size_t p = 0; p < pools_.size(); ++p) {
    pools_[p].desired.push_back(demand[p].desired_workers);
  }
}

SimReport Simulation::Run() {
  const auto start = std::chrono::steady_clock::now();
  jobs_.resize(workload_.arrivals.size());
  const size_t n = workload_.arrivals.size();
  size_t next = 0;
  double next_tick = kInf;
  double next_sample =
      options_.autoscale_sample_seconds > 0 && n > 0 ? workload_.arrivals[0].time : kInf;
  while (next < n || !done_.empty()) {
    const double t_arrival = next < n ? workload_.arrivals[next].time : kInf;
    const double t_done = done_.empty() ? kInf : done_.top().first;
    const double now = std::min({t_arrival, t_done, next_tick, next_sample});
    int64_t arrived = -1;
    if (now == t_done) {
      const int w = done_.top().second;
      done_.pop();
      Complete(w, now);
    } else if (now == t_arrival) {
      if (Arrive(static_cast<int>(next))) arrived = static_cast<int64_t>(next);
      ++next;
    } else if (now == next_sample) {
      Sample(now);
      next_sample += options_.autoscale_sample_seconds;
      continue;  // a sample changes nothing
    }
    const int held = Dispatch(now, arrived);
    // Held jobs wait for a busy cheaper pool; time alone can change that (the deadline nears),
    // as the scheduler's heartbeat-driven passes would notice.
    next_tick = held > 0 ? now + options_.tick_seconds : kInf;
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Finish(wall);
}

SimReport Simulation::Finish(double wall_seconds) {
  SimReport r;
  r.workload = workload_.name;
  r.jobs = static_cast<int64_t>(workload_.arrivals.size());
  r.completed = static_cast<int64_t>(latencies_.size());
  r.unservable = unservable_;
  r.deadline_jobs = deadline_jobs_;
  r.deadline_misses = deadline_misses_;
  r.dispatch_passes = passes_;
  r.wall_seconds = wall_seconds;
  r.span_seconds = r.completed > 0 ? last_finish_ - first_arrival_ : 0;
  if (!latencies_.empty()) {
    double sum = 0;
    for (double l : latencies_) sum += l;
    r.latency_mean = sum / latencies_.size();
    r.latency_max = *std::max_element(latencies_.begin(), latencies_.end());
    r.latency_p50 = Percentile(latencies_, 50);
    r.latency_p95 = Percentile(latencies_, 95);
    r.latency_p99 = Percentile(latencies_, 99);
  }
  double busy_cost = 0;
  for (Pool& pool : pools_) {
    ClassReport c = pool.report;
    const double provisioned = c.workers * r.span_seconds;
    c.utilization = provisioned > 0 ? c.busy_seconds / provisioned : 0;
    c.fleet_cost = c.price_per_hour * provisioned / 3600;
    c.busy_cost_per_video = c.jobs > 0 ? c.busy_cost / c.jobs : 0;
    c.fleet_cost_per_video = c.jobs > 0 ? c.fleet_cost / c.jobs : 0;
    if (!pool.latencies.empty()) {
      c.latency_p50 = Percentile(pool.latencies, 50);
      c.latency_p95 = Percentile(pool.latencies, 95);
      c.latency_p99 = Percentile(pool.latencies, 99);
    }
    if (!pool.desired.empty()) {
      double sum = 0;
      for (double d : pool.desired) sum += d;
      c.desired_mean = sum / pool.desired.size();
      c.desired_max = *std::max_element(pool.desired.begin(), pool.desired.end());
    }
    r.fleet_cost += c.fleet_cost;
    busy_cost += c.busy_cost;
    r.classes.push_back(c);
  }
  r.fleet_cost_per_video = r.completed > 0 ? r.fleet_cost / r.completed : 0;
  r.busy_cost_per_video = r.completed > 0 ? busy_cost / r.completed : 0;
  return r;
}

// JSON string contents: quotes, backslashes and control characters escaped.
std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  const size_t n = values.size();
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * n));
  rank = std::min(n, std::max<size_t>(1, rank));
  std::nth_element(values.begin(), values.begin() + (rank - 1), values.end());
  return values[rank - 1];
}

absl::StatusOr<SimReport> Simulate(const Workload& workload, const FleetSpec& fleet,
                                   const scheduler::ServiceTimeModel& model,
                                   const scheduler::ModelCatalog& catalog,
                                   const SimOptions& options) {
  for (const auto& [node_class, count] : fleet.workers) {
    if (catalog.NodeClasses().count(node_class) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("fleet: '", node_class, "' is not a node class of the model catalog"));
    }
    if (count < 0) return absl::InvalidArgumentError(absl::StrCat("fleet: ", node_class, " < 0"));
  }
  if (!(options.tick_seconds > 0)) return absl::InvalidArgumentError("tick_seconds: must be > 0");
  if (!(options.jitter_cv >= 0)) return absl::InvalidArgumentError("jitter: must be >= 0");
  Simulation simulation(workload, fleet, model, catalog, options);
  return simulation.Run();
}

std::string FormatReport(const SimReport& r) {
  std::string out = absl::StrFormat(
      "workload %s: %d jobs, %d completed, %d unservable; span %.1f s; simulated in %.2f s "
      "(%d dispatch passes)\n"
      "latency s: mean %.2f  p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n"
      "deadlines: %d of %d jobs missed (%.2f %%)\n"
      "cost per video: %.6f (fleet: every worker paid for the span), %.6f (busy time only)\n",
      r.workload, r.jobs, r.completed, r.unservable, r.span_seconds, r.wall_seconds,
      r.dispatch_passes, r.latency_mean, r.latency_p50, r.latency_p95, r.latency_p99, r.latency_max,
      r.deadline_misses, r.deadline_jobs,
      r.deadline_jobs > 0 ? 100.0 * r.deadline_misses / r.deadline_jobs : 0.0,
      r.fleet_cost_per_video, r.busy_cost_per_video);
  absl::StrAppendFormat(&out, "%-9s %7s %8s %9s %6s %10s %10s %8s %8s %8s %12s\n", "class",
                        "workers", "price/h", "jobs", "util", "fleet/vid", "busy/vid", "p50", "p95",
                        "p99", "desired avg/max");
  for (const ClassReport& c : r.classes) {
    absl::StrAppendFormat(&out,
                          "%-9s %7d %8.3f %9d %5.1f%% %10.6f %10.6f %8.2f %8.2f %8.2f %7.1f/%.0f\n",
                          c.node_class, c.workers, c.price_per_hour, c.jobs, 100 * c.utilization,
                          c.fleet_cost_per_video, c.busy_cost_per_video, c.latency_p50,
                          c.latency_p95, c.latency_p99, c.desired_mean, c.desired_max);
  }
  return out;
}

std::string ReportJson(const SimReport& r) {
  std::string classes;
  for (const ClassReport& c : r.classes) {
    absl::StrAppendFormat(
        &classes,
        "%s{\"node_class\":\"%s\",\"workers\":%d,\"price_per_hour\":%.6g,\"jobs\":%d,"
        "\"busy_seconds\":%.6g,\"utilization\":%.6g,\"busy_cost\":%.6g,\"fleet_cost\":%.6g,"
        "\"busy_cost_per_video\":%.6g,\"fleet_cost_per_video\":%.6g,\"latency_p50\":%.6g,"
        "\"latency_p95\":%.6g,\"latency_p99\":%.6g,\"desired_mean\":%.6g,\"desired_max\":%.6g}",
        classes.empty() ? "" : ",", Escape(c.node_class), c.workers, c.price_per_hour, c.jobs,
        c.busy_seconds, c.utilization, c.busy_cost, c.fleet_cost, c.busy_cost_per_video,
        c.fleet_cost_per_video, c.latency_p50, c.latency_p95, c.latency_p99, c.desired_mean,
        c.desired_max);
  }
  return absl::StrFormat(
      "{\"workload\":\"%s\",\"jobs\":%d,\"completed\":%d,\"unservable\":%d,"
      "\"latency_mean\":%.6g,\"latency_p50\":%.6g,\"latency_p95\":%.6g,\"latency_p99\":%.6g,"
      "\"latency_max\":%.6g,\"deadline_jobs\":%d,\"deadline_misses\":%d,\"span_seconds\":%.6g,"
      "\"fleet_cost\":%.6g,\"fleet_cost_per_video\":%.6g,\"busy_cost_per_video\":%.6g,"
      "\"dispatch_passes\":%d,\"wall_seconds\":%.6g,\"classes\":[%s]}",
      Escape(r.workload), r.jobs, r.completed, r.unservable, r.latency_mean, r.latency_p50,
      r.latency_p95, r.latency_p99, r.latency_max, r.deadline_jobs, r.deadline_misses,
      r.span_seconds, r.fleet_cost, r.fleet_cost_per_video, r.busy_cost_per_video,
      r.dispatch_passes, r.wall_seconds, classes);
}

}  // namespace turbovid::fleetsim
