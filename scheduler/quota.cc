#include "scheduler/quota.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace turbovid::scheduler {

absl::Status TenantQuotas::TakeSubmit(const std::string& tenant, double now_seconds) {
  if (config_.submits_per_second <= 0) return absl::OkStatus();
  auto [it, fresh] = buckets_.try_emplace(tenant);
  Bucket& bucket = it->second;
  if (fresh) {
    bucket.tokens = config_.submit_burst;
  } else {
    bucket.tokens = std::min(config_.submit_burst,
                             bucket.tokens + (now_seconds - bucket.updated) *
                                                 config_.submits_per_second);
  }
  bucket.updated = now_seconds;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return absl::OkStatus();
  }
  const double wait = (1 - bucket.tokens) / config_.submits_per_second;
  return absl::ResourceExhaustedError(absl::StrFormat(
      "tenant '%s': more than %g submits per second (burst %g); retry after %.2f s", tenant,
      config_.submits_per_second, config_.submit_burst, wait));
}

absl::Status TenantQuotas::CheckActive(const std::string& tenant, int active) const {
  if (config_.max_active_jobs <= 0 || active < config_.max_active_jobs) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("tenant '", tenant, "': ", active, " jobs queued or running, the most allowed is ",
                   config_.max_active_jobs, "; retry after one finishes"));
}

}  // namespace turbovid::scheduler
