// A small Prometheus registry: counter, gauge and histogram families with label sets, rendered in
// the text exposition format 0.0.4. Thread-safe; children live as long as the registry.
//   Registry registry;
//   auto& jobs = registry.AddCounter("turbovid_jobs_total", "Jobs by final state.", {"model",
//   "state"}); jobs.WithLabels({"tiny-t2v", "succeeded"}).Increment();
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace turbovid::common::metrics {

class Counter {
 public:
  void Increment(double amount = 1.0);  // amount >= 0 (negative amounts are ignored)
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double amount = 1.0);
  void Decrement(double amount = 1.0) { Increment(-amount); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* upper_bounds);  // sorted, without +Inf
  void Observe(double value);
  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0.0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* upper_bounds_;  // owned by the family
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), last = +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

enum class MetricType { kCounter, kGauge, kHistogram };

// The children of one metric name, keyed by label values (in label-name order).
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> buckets = {});
  // The child for these label values, created on first use. The count must match the names.
  T& WithLabels(const std::vector<std::string>& label_values);
  // The only child of a family declared without labels.
  T& Get() { return WithLabels({}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<double>& buckets() const { return buckets_; }
  // Calls fn(label_values, child) for every child in label order, under the family lock.
  void ForEach(const std::function<void(const std::vector<std::string>&, const T&)>& fn) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> buckets_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Bucket helpers: {start, start*factor, ...} (count bounds) and {start, start+width, ...}.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
std::vector<double> LinearBuckets(double start, double width, int count);

// The `resolution` label of a job of width x height pixels: the smallest tier of the resolution
// table (docs/model-math.md §6.2) whose largest area holds it, "480p" (up to 640x640) or "720p"
// (up to 960x960 = 1280x720), else "larger". Bounded, unlike the size itself.
std::string ResolutionLabel(int width, int height);

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names must be unique and valid metric names (a duplicate or bad name is our bug: aborts).
  // A family without labels starts with its single child at 0, so it is exported from the start.
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            const std::vector<std::string>& label_names = {});
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        const std::vector<std::string>& label_names = {});
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names,
                                std::vector<double> buckets);

  // Runs before every Render (e.g. to set gauges computed from live state).
  void AddCollectHook(std::function<void()> hook);

  // Text exposition format 0.0.4, families in registration order.
  std::string Render() const;

 private:
  struct Entry {
    MetricType type;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
  };
  void CheckNewName(const std::string& name, const std::vector<std::string>& label_names);

  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::vector<std::function<void()>> hooks_;
};

// Exposition helpers, exposed for tests: label value escaping (\\, \", \n) and number format
// (shortest round-trip, "+Inf", "-Inf", "NaN").
std::string EscapeLabelValue(const std::string& value);
std::string FormatValue(double value);

}  // namespace turbovid::common::metrics
