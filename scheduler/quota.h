// Per-tenant limits on submits: a token bucket of submits per second, a cap on a tenant's jobs
// not yet final (queued, assigned, running) and a budget of GPU-seconds over a rolling 24 hours.
// Every tenant gets the defaults unless `tenants` names it. Refusals are RESOURCE_EXHAUSTED with
// the wait in the message ("retry after N s"). No lock inside: the scheduler calls it under its
// own.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"

namespace turbovid::scheduler {

struct QuotaLimits {
  double submits_per_second = 0;  // 0 = unlimited
  double submit_burst = 20;       // bucket size (submits allowed at once after a quiet spell)
  int max_active_jobs = 0;        // queued + assigned + running; 0 = unlimited
  // GPU time of the tenant's jobs that finished in the last 24 hours (run time x GPUs of the
  // worker); a submit at or over it is refused until enough of that time is older than 24 h.
  // 0 = unlimited.
  double gpu_seconds_per_day = 0;
};

// The defaults (the fields inherited from QuotaLimits) and per-tenant overrides: a tenant entry
// is complete, its keys not given in the file taken from the file's defaults.
struct QuotaConfig : QuotaLimits {
  std::map<std::string, QuotaLimits> tenants;
  const QuotaLimits& For(const std::string& tenant) const {
    auto it = tenants.find(tenant);
    return it == tenants.end() ? *this : it->second;
  }
};

class TenantQuotas {
 public:
  // The window of gpu_seconds_per_day.
  static constexpr double kGpuWindowSeconds = 86400;

  explicit TenantQuotas(QuotaConfig config) : config_(std::move(config)) {}

  const QuotaConfig& config() const { return config_; }
  // Takes one submit of `tenant` at `now_seconds` (a steady clock), or says how long to wait.
  absl::Status TakeSubmit(const std::string& tenant, double now_seconds);
  // `active`: the tenant's jobs not yet final, including submits not yet stored.
  absl::Status CheckActive(const std::string& tenant, int active) const;
  // Whether the tenant's GPU-seconds of the last 24 hours (at `now_unix`) are under its budget;
  // the refusal says when enough of them leave the window.
  absl::Status CheckGpuBudget(const std::string& tenant, double now_unix);
  // A job of `tenant` that finished at `finished_unix` used `gpu_seconds`.
  void AddGpuSeconds(const std::string& tenant, double finished_unix, double gpu_seconds);
  // The tenant's GPU-seconds of the 24 hours before `now_unix`.
  double GpuSecondsUsed(const std::string& tenant, double now_unix);
  // GpuSecondsUsed of every tenant with any record (the metric).
  std::map<std::string, double> GpuSecondsByTenant(double now_unix);

 private:
  struct Bucket {
    double tokens = 0;
    double updated = 0;
  };
  struct GpuLedger {
    std::deque<std::pair<double, double>> entries;  // (finished unix seconds, gpu seconds), sorted
    double sum = 0;
  };
  // Drops the entries older than the window.
  void Prune(GpuLedger& ledger, double now_unix);

  QuotaConfig config_;
  std::map<std::string, Bucket> buckets_;  // one per tenant that submitted (tenants come from keys)
  std::map<std::string, GpuLedger> gpu_;
};

}  // namespace turbovid::scheduler
