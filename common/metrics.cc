// Metric children, families and the Prometheus text exposition (format 0.0.4).
#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::common::metrics {
namespace {

bool ValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit) || (allow_colon && c == ':'))) return false;
  }
  return true;
}

void AtomicAdd(std::atomic<double>& target, double amount) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `{a="x",b="y"}` (with an optional extra label such as le), or "" when there are no labels.
std::string LabelText(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra_name = "", const std::string& extra_value = "") {
  if (names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ",";
    absl::StrAppend(&out, extra_name, "=\"", EscapeLabelValue(extra_value), "\"");
  }
  out += "}";
  return out;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

template <typename T>
void RenderHeader(const Family<T>& family, MetricType type, std::string* out) {
  absl::StrAppend(out, "# HELP ", family.name(), " ", EscapeHelp(family.help()), "\n");
  absl::StrAppend(out, "# TYPE ", family.name(), " ", TypeName(type), "\n");
}

template <typename T>
void RenderScalar(const Family<T>& family, MetricType type, std::string* out) {
  RenderHeader(family, type, out);
  family.ForEach([&](const std::vector<std::string>& values, const T& child) {
    absl::StrAppend(out, family.name(), LabelText(family.label_names(), values), " ",
                    FormatValue(child.Value()), "\n");
  });
}

void RenderHistogram(const HistogramFamily& family, std::string* out) {
  RenderHeader(family, MetricType::kHistogram, out);
  const std::vector<double>& bounds = family.buckets();
  family.ForEach([&](const std::vector<std::string>& values, const Histogram& child) {
    const Histogram::Snapshot snap = child.Read();
    for (size_t i = 0; i <= bounds.size(); ++i) {
      const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
      absl::StrAppend(out, family.name(), "_bucket",
                      LabelText(family.label_names(), values, "le", le), " ",
                      snap.cumulative_counts[i], "\n");
    }
    const std::string labels = LabelText(family.label_names(), values);
    absl::StrAppend(out, family.name(), "_sum", labels, " ", FormatValue(snap.sum), "\n");
    absl::StrAppend(out, family.name(), "_count", labels, " ", snap.count, "\n");
  });
}

}  // namespace

void Counter::Increment(double amount) {
  if (amount > 0) AtomicAdd(value_, amount);
}

void Gauge::Increment(double amount) { AtomicAdd(value_, amount); }

Histogram::Histogram(const std::vector<double>* upper_bounds)
    : upper_bounds_(upper_bounds), counts_(upper_bounds->size() + 1, 0) {}

void Histogram::Observe(double value) {
  // Bucket i counts values <= bound i; NaN lands in +Inf only.
  const auto it = std::lower_bound(upper_bounds_->begin(), upper_bounds_->end(), value);
  const size_t bucket =
      std::isnan(value) ? upper_bounds_->size() : static_cast<size_t>(it - upper_bounds_->begin());
  std::lock_guard<std::mutex> lock(mu_);
  counts_[bucket] += 1;
  sum_ += value;
  count_ += 1;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snap;
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t running = 0;
  for (uint64_t c : counts_) {
    running += c;
    snap.cumulative_counts.push_back(running);
  }
  snap.sum = sum_;
  snap.count = count_;
  return snap;
}

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& label_values) {
  TV_CHECK(label_values.size() == label_names_.size());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(label_values);
  if (it == children_.end()) {
    std::unique_ptr<T> child;
    if constexpr (std::is_same_v<T, Histogram>) {
      child = std::make_unique<Histogram>(&buckets_);
    } else {
      child = std::make_unique<T>();
    }
    it = children_.emplace(label_values, std::move(child)).first;
  }
  return *it->second;
}

template <typename T>
void Family<T>::ForEach(
    const std::function<void(const std::vector<std::string>&, const T&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) fn(values, *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) out.push_back(bound);
  return out;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

std::string ResolutionLabel(int width, int height) {
  const int64_t area = static_cast<int64_t>(width) * height;
  if (area <= 640 * 640) return "480p";
  if (area <= 960 * 960) return "720p";
  return "larger";
}

void Registry::CheckNewName(const std::string& name, const std::vector<std::string>& label_names) {
  TV_CHECK(ValidName(name, /*allow_colon=*/true));
  for (const std::string& label : label_names) {
    TV_CHECK(ValidName(label, /*allow_colon=*/false) && label != "le");
  }
  for (const Entry& entry : entries_) {
    const std::string& existing = entry.type == MetricType::kCounter ? entry.counter->name()
                                  : entry.type == MetricType::kGauge ? entry.gauge->name()
                                                                     : entry.histogram->name();
    TV_CHECK(existing != name);
  }
}

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    const std::vector<std::string>& label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, label_names);
  Entry entry{MetricType::kCounter, std::make_unique<CounterFamily>(name, help, label_names),
              nullptr, nullptr};
  if (label_names.empty()) entry.counter->Get();
  entries_.push_back(std::move(entry));
  return *entries_.back().counter;
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, label_names);
  Entry entry{MetricType::kGauge, nullptr, std::make_unique<GaugeFamily>(name, help, label_names),
              nullptr};
  if (label_names.empty()) entry.gauge->Get();
  entries_.push_back(std::move(entry));
  return *entries_.back().gauge;
}

HistogramFamily& Registry::AddHistogram(const std::string& name, const std::string& help,
                                        const std::vector<std::string>& label_names,
                                        std::vector<double> buckets) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, label_names);
  TV_CHECK(std::is_sorted(buckets.begin(), buckets.end()));
  TV_CHECK(std::adjacent_find(buckets.begin(), buckets.end()) == buckets.end());
  if (!buckets.empty() && std::isinf(buckets.back()) && buckets.back() > 0) buckets.pop_back();
  Entry entry{MetricType::kHistogram, nullptr, nullptr,
              std::make_unique<HistogramFamily>(name, help, label_names, std::move(buckets))};
  if (label_names.empty()) entry.histogram->Get();
  entries_.push_back(std::move(entry));
  return *entries_.back().histogram;
}

void Registry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(hook));
}

std::string Registry::Render() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks = hooks_;
  }
  // Hooks run outside the registry lock: they set gauges, which take only family locks.
  for (const auto& hook : hooks) hook();
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const Entry& entry : entries_) {
    switch (entry.type) {
      case MetricType::kCounter:
        RenderScalar(*entry.counter, entry.type, &out);
        break;
      case MetricType::kGauge:
        RenderScalar(*entry.gauge, entry.type, &out);
        break;
      case MetricType::kHistogram:
        RenderHistogram(*entry.histogram, &out);
        break;
    }
  }
  return out;
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, ptr);
}

}  // namespace turbovid::common::metrics
