// The sweep: per-class searches and a grid run on a few threads over one cache of simulated
// mixes, then the frontier, the text and JSON summaries and the SVG picture.
#include "bench/fleetsim/sweep.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace turbovid::fleetsim {
namespace {

class MixCache {
 public:
  MixCache(const Workload& workload, const scheduler::ServiceTimeModel& model,
           const scheduler::ModelCatalog& catalog, const SweepOptions& options)
      : workload_(workload), model_(model), catalog_(catalog), options_(options) {}

  absl::StatusOr<SweepPoint> Get(int a, int b) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = points_.find({a, b});
      if (it != points_.end()) return it->second;
    }
    FleetSpec fleet = options_.fleet;
    fleet.workers[options_.class_a] = a;
    fleet.workers[options_.class_b] = b;
    absl::StatusOr<SimReport> report = Simulate(workload_, fleet, model_, catalog_, options_.sim);
    if (!report.ok()) return report.status();
    SweepPoint p;
    p.a = a;
    p.b = b;
    p.served_all = report->unservable == 0 && report->completed > 0;
    p.latency = options_.slo_percentile == 50   ? report->latency_p50
                : options_.slo_percentile == 99 ? report->latency_p99
                                                : report->latency_p95;
    p.cost_per_video = report->fleet_cost_per_video;
    for (const ClassReport& c : report->classes) {
      p.fleet_cost_per_hour += c.workers * c.price_per_hour;
    }
    p.deadline_miss_rate = report->deadline_jobs > 0
                               ? static_cast<double>(report->deadline_misses) /
                                     static_cast<double>(report->deadline_jobs)
                               : 0;
    p.meets = p.served_all && p.latency <= options_.slo_seconds &&
              p.deadline_miss_rate <= options_.max_miss_rate;
    std::lock_guard<std::mutex> lock(mu_);
    points_[{a, b}] = p;
    return p;
  }

  std::vector<SweepPoint> Points() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SweepPoint> out;
    for (const auto& [key, p] : points_) out.push_back(p);
    return out;
  }

 private:
  const Workload& workload_;
  const scheduler::ServiceTimeModel& model_;
  const scheduler::ModelCatalog& catalog_;
  const SweepOptions& options_;
  mutable std::mutex mu_;
  std::map<std::pair<int, int>, SweepPoint> points_;
};

// Runs `task(i)` for i in [0, n) on `threads` threads; the first error wins.
absl::Status ParallelFor(int n, int threads, const std::function<absl::Status(int)>& task) {
  std::atomic<int> next{0};
  std::mutex mu;
  absl::Status first;
  auto run = [&] {
    for (int i = next++; i < n; i = next++) {
      absl::Status status = task(i);
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = status;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(run);
  run();
  for (std::thread& t : pool) t.join();
  return first;
}

std::vector<int> Linspace(int lo, int hi, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    const int v = n == 1 ? lo : lo + static_cast<int>(std::lround(double(hi - lo) * i / (n - 1)));
    if (out.empty() || out.back() != v) out.push_back(v);
  }
  return out;
}

// "1, 2, 5 x 10^k" ticks covering [lo, hi] on a log axis.
std::vector<double> LogTicks(double lo, double hi) {
  std::vector<double> out;
  for (double decade = std::pow(10, std::floor(std::log10(lo))); decade <= hi; decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m * decade >= lo && m * decade <= hi) out.push_back(m * decade);
    }
  }
  return out;
}

std::string Number(double v) {
  if (v >= 100) return absl::StrFormat("%.0f", v);
  if (v >= 1) return absl::StrFormat("%.3g", v);
  return absl::StrFormat("%.2g", v);
}

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<SweepResult> Sweep(const Workload& workload,
                                  const scheduler::ServiceTimeModel& model,
                                  const scheduler::ModelCatalog& catalog, const SweepOptions& o) {
  if (o.class_a == o.class_b) return absl::InvalidArgumentError("sweep: two different classes");
  if (o.min_a < 0 || o.min_b < 0 || o.max_a < o.min_a || o.max_b < o.min_b) {
    return absl::InvalidArgumentError("sweep: need 0 <= min <= max for both classes");
  }
  if (!(o.slo_seconds > 0)) return absl::InvalidArgumentError("sweep: slo must be > 0");
  if (o.slo_percentile != 50 && o.slo_percentile != 95 && o.slo_percentile != 99) {
    return absl::InvalidArgumentError("sweep: percentile must be 50, 95 or 99");
  }
  MixCache cache(workload, model, catalog, o);
  // Per count of class a: the fewest of class b that meet the SLO, counting up (latency need not
  // fall as workers are added: placement may hold jobs for a cheaper class up to their
  // deadlines, so bisection could skip the answer).
  const int searches = o.max_a - o.min_a + 1;
  std::vector<int> fewest(searches, -1);  // per a: the fewest b meeting the SLO, -1 = none
  absl::Status status = ParallelFor(searches, o.threads, [&](int i) -> absl::Status {
    const int a = o.min_a + i;
    for (int b = o.min_b; b <= o.max_b; ++b) {
      absl::StatusOr<SweepPoint> p = cache.Get(a, b);
      if (!p.ok()) return p.status();
      if (p->meets) {
        fewest[i] = b;
        break;
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  const std::vector<int> grid_a = Linspace(o.min_a, o.max_a, o.grid);
  const std::vector<int> grid_b = Linspace(o.min_b, o.max_b, o.grid);
  status = ParallelFor(static_cast<int>(grid_a.size() * grid_b.size()), o.threads, [&](int i) {
    return cache.Get(grid_a[i / grid_b.size()], grid_b[i % grid_b.size()]).status();
  });
  if (!status.ok()) return status;
  SweepResult result;
  result.points = cache.Points();
  result.simulations = static_cast<int>(result.points.size());
  for (SweepPoint& p : result.points) p.fewest_b = fewest[p.a - o.min_a] == p.b;
  // Frontier: served mixes by latency; one is on it when it is cheaper than every faster one.
  std::vector<int> order;
  for (size_t i = 0; i < result.points.size(); ++i) {
    if (result.points[i].served_all) order.push_back(static_cast<int>(i));
  }
  std::sort(order.begin(), order.end(), [&](int x, int y) {
    const SweepPoint& p = result.points[x];
    const SweepPoint& q = result.points[y];
    return std::make_pair(p.latency, p.cost_per_video) <
           std::make_pair(q.latency, q.cost_per_video);
  });
  double cheapest = std::numeric_limits<double>::infinity();
  for (int i : order) {
    SweepPoint& p = result.points[i];
    if (p.cost_per_video < cheapest) {
      p.frontier = true;
      cheapest = p.cost_per_video;
    }
    if (p.meets &&
        (result.best < 0 || p.cost_per_video < result.points[result.best].cost_per_video)) {
      result.best = i;
    }
  }
  return result;
}

std::string FormatSweep(const SweepResult& r, const SweepOptions& o) {
  std::string out = absl::StrFormat(
      "sweep %s x %s, SLO p%.0f <= %.1f s with at most %.1f %% of deadlines missed: %d mixes "
      "simulated. Listed: the cost/latency frontier and, per count of %s, the fewest %s meeting "
      "the SLO.\n",
      o.class_a, o.class_b, o.slo_percentile, o.slo_seconds, 100 * o.max_miss_rate, r.simulations,
      o.class_a, o.class_b);
  absl::StrAppendFormat(&out, "%8s %8s %12s %14s %12s %10s  %s\n", o.class_a, o.class_b,
                        absl::StrFormat("p%.0f s", o.slo_percentile), "cost/video", "fleet/h",
                        "missed", "");
  for (size_t i = 0; i < r.points.size(); ++i) {
    const SweepPoint& p = r.points[i];
    if (!p.frontier && !p.fewest_b) continue;
    const char* what = p.frontier && p.fewest_b ? "frontier, fewest"
                       : p.frontier             ? "frontier"
                                                : "fewest";
    absl::StrAppendFormat(&out, "%8d %8d %12.2f %14.6f %12.3f %9.2f%%  %s%s\n", p.a, p.b, p.latency,
                          p.cost_per_video, p.fleet_cost_per_hour, 100 * p.deadline_miss_rate, what,
                          static_cast<int>(i) == r.best ? " <- cheapest" : "");
  }
  if (r.best < 0) {
    absl::StrAppend(&out, "no mix in range meets the SLO\n");
  } else {
    const SweepPoint& b = r.points[r.best];
    absl::StrAppendFormat(&out,
                          "cheapest mix meeting the SLO: %d x %s + %d x %s, p%.0f %.2f s, "
                          "%.6f per video, %.3f per hour\n",
                          b.a, o.class_a, b.b, o.class_b, o.slo_percentile, b.latency,
                          b.cost_per_video, b.fleet_cost_per_hour);
  }
  return out;
}

std::string SweepJson(const SweepResult& r, const SweepOptions& o) {
  std::string points;
  for (const SweepPoint& p : r.points) {
    absl::StrAppendFormat(&points,
                          "%s{\"%s\":%d,\"%s\":%d,\"latency\":%.6g,\"cost_per_video\":%.6g,"
                          "\"fleet_cost_per_hour\":%.6g,\"deadline_miss_rate\":%.6g,"
                          "\"served_all\":%s,\"meets\":%s,\"frontier\":%s}",
                          points.empty() ? "" : ",", o.class_a, p.a, o.class_b, p.b, p.latency,
                          p.cost_per_video, p.fleet_cost_per_hour, p.deadline_miss_rate,
                          p.served_all ? "true" : "false", p.meets ? "true" : "false",
                          p.frontier ? "true" : "false");
  }
  std::string best = "null";
  if (r.best >= 0) {
    best = absl::StrFormat("{\"%s\":%d,\"%s\":%d}", o.class_a, r.points[r.best].a, o.class_b,
                           r.points[r.best].b);
  }
  return absl::StrFormat(
      "{\"class_a\":\"%s\",\"class_b\":\"%s\",\"slo_seconds\":%.6g,\"slo_percentile\":%.6g,"
      "\"best\":%s,\"points\":[%s]}",
      o.class_a, o.class_b, o.slo_seconds, o.slo_percentile, best, points);
}

std::string FrontierSvg(const SweepResult& r, const SweepOptions& o, const std::string& title) {
  constexpr double kWidth = 820, kHeight = 540;
  constexpr double kLeft = 90, kRight = 30, kTop = 60, kBottom = 80;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  // x: latency on a log axis from the fastest mix to 20x the SLO; slower mixes are left out.
  double x_lo = o.slo_seconds, y_hi = 0;
  const double x_hi_cap = o.slo_seconds * 20;
  double x_hi = o.slo_seconds * 1.5;
  int left_out = 0;
  for (const SweepPoint& p : r.points) {
    if (!p.served_all || !(p.latency > 0) || p.latency > x_hi_cap) {
      ++left_out;
      continue;
    }
    x_lo = std::min(x_lo, p.latency);
    x_hi = std::max(x_hi, p.latency);
    y_hi = std::max(y_hi, p.cost_per_video);
  }
  x_lo /= 1.3;
  x_hi *= 1.3;
  // y: from 0 in five steps of 1, 2 or 5 x 10^k.
  double y_step = std::pow(10, std::floor(std::log10(y_hi > 0 ? y_hi / 5 : 1)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (y_hi <= 5 * m * y_step) {
      y_step *= m;
      break;
    }
  }
  y_hi = 5 * y_step;
  auto X = [&](double v) { return kLeft + plot_w * (std::log(v / x_lo) / std::log(x_hi / x_lo)); };
  auto Y = [&](double v) { return kTop + plot_h * (1 - v / y_hi); };
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.0f\" y=\"28\" font-size=\"16\" font-weight=\"bold\">%s</text>\n",
      kWidth, kHeight, kWidth, kHeight, kLeft, XmlEscape(title));
  // Grid, ticks and axis titles.
  for (double t : LogTicks(x_lo, x_hi)) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
        X(t), kTop, X(t), kTop + plot_h, X(t), kTop + plot_h + 18, Number(t));
  }
  for (int i = 0; i <= 5; ++i) {
    const double v = y_step * i;
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
        kLeft, Y(v), kLeft + plot_w, Y(v), kLeft - 6, Y(v) + 4, absl::StrFormat("%g", v));
  }
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n"
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">p%.0f end-to-end latency, seconds "
      "(log scale)</text>\n"
      "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">cost per video "
      "(every worker paid for the whole run)</text>\n",
      kLeft, kTop, plot_w, plot_h, kLeft + plot_w / 2, kHeight - 40, o.slo_percentile,
      kTop + plot_h / 2);
  // The SLO.
  absl::StrAppendFormat(&svg,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c0392b\" "
                        "stroke-dasharray=\"6 4\"/><text x=\"%.1f\" y=\"%.1f\" fill=\"#c0392b\">"
                        "SLO p%.0f &lt;= %s s</text>\n",
                        X(o.slo_seconds), kTop, X(o.slo_seconds), kTop + plot_h,
                        X(o.slo_seconds) + 4, kTop + 14, o.slo_percentile, Number(o.slo_seconds));
  // Every mix, then the frontier as a staircase, then the cheapest mix meeting the SLO.
  std::vector<const SweepPoint*> frontier;
  for (const SweepPoint& p : r.points) {
    if (!p.served_all || !(p.latency > 0) || p.latency > x_hi_cap) continue;
    absl::StrAppendFormat(&svg,
                          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%d %s + %d "
                          "%s: p%.0f %.2f s, %.6f per video</title></circle>\n",
                          X(p.latency), Y(p.cost_per_video), p.meets ? "#7f8c8d" : "#cfd4d6", p.a,
                          o.class_a, p.b, o.class_b, o.slo_percentile, p.latency, p.cost_per_video);
    if (p.frontier) frontier.push_back(&p);
  }
  std::sort(frontier.begin(), frontier.end(),
            [](const SweepPoint* a, const SweepPoint* b) { return a->latency < b->latency; });
  if (!frontier.empty()) {
    std::string path;
    for (size_t i = 0; i < frontier.size(); ++i) {
      const double x = X(frontier[i]->latency), y = Y(frontier[i]->cost_per_video);
      if (i > 0) absl::StrAppendFormat(&path, " %.1f,%.1f", x, Y(frontier[i - 1]->cost_per_video));
      absl::StrAppendFormat(&path, " %.1f,%.1f", x, y);
    }
    absl::StrAppendFormat(&svg,
                          "<polyline points=\"%s\" fill=\"none\" stroke=\"#2471a3\" "
                          "stroke-width=\"2\"/>\n",
                          path);
    double labelled_x = -1e9;  // labels at least 45 px apart, so they stay readable
    for (const SweepPoint* p : frontier) {
      const double x = X(p->latency), y = Y(p->cost_per_video);
      absl::StrAppendFormat(&svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#2471a3\"/>\n", x,
                            y);
      if (x - labelled_x < 45) continue;
      labelled_x = x;
      absl::StrAppendFormat(&svg,
                            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#2471a3\">"
                            "%d+%d</text>\n",
                            x + 5, y - 6, p->a, p->b);
    }
  }
  std::string caption = absl::StrFormat("%d mixes of %s + %s simulated (labels: %s+%s counts)",
                                        r.simulations, o.class_a, o.class_b, o.class_a, o.class_b);
  if (left_out > 0) {
    absl::StrAppendFormat(&caption, "; %d slower or unservable not shown", left_out);
  }
  std::string verdict;
  if (r.best >= 0) {
    const SweepPoint& b = r.points[r.best];
    absl::StrAppendFormat(
        &svg,
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#c0392b\" "
        "stroke-width=\"2.5\"/>\n",
        X(b.latency), Y(b.cost_per_video));
    verdict = absl::StrFormat(
        "Cheapest meeting the SLO (red ring): %d %s + %d %s, %.6f per video, p%.0f %.1f s, "
        "%.1f %% of deadlines missed",
        b.a, o.class_a, b.b, o.class_b, b.cost_per_video, o.slo_percentile, b.latency,
        100 * b.deadline_miss_rate);
  } else {
    verdict = "No mix in range meets the SLO";
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%s</text>\n"
                        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%s</text>\n</svg>\n",
                        kLeft, kHeight - 22, XmlEscape(caption), kLeft, kHeight - 8,
                        XmlEscape(verdict));
  return svg;
}

}  // namespace turbovid::fleetsim
