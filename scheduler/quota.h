// Per-tenant limits on submits: a token bucket of submits per second and a cap on a tenant's jobs
// not yet final (queued, assigned, running). Refusals are RESOURCE_EXHAUSTED with the wait in the
// message. No lock inside: the scheduler calls it under its own.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"

namespace turbovid::scheduler {

struct QuotaConfig {
  double submits_per_second = 0;  // per tenant; 0 = unlimited
  double submit_burst = 20;       // bucket size (submits allowed at once after a quiet spell)
  int max_active_jobs = 0;        // per tenant, queued + assigned + running; 0 = unlimited
};

class TenantQuotas {
 public:
  explicit TenantQuotas(QuotaConfig config) : config_(config) {}

  const QuotaConfig& config() const { return config_; }
  // Takes one submit of `tenant` at `now_seconds` (a steady clock), or says how long to wait.
  absl::Status TakeSubmit(const std::string& tenant, double now_seconds);
  // `active`: the tenant's jobs not yet final, including submits not yet stored.
  absl::Status CheckActive(const std::string& tenant, int active) const;

 private:
  struct Bucket {
    double tokens = 0;
    double updated = 0;
  };
  QuotaConfig config_;
  std::map<std::string, Bucket> buckets_;  // one per tenant that submitted (tenants come from keys)
};

}  // namespace turbovid::scheduler
