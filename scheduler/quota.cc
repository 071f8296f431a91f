#include "scheduler/quota.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace turbovid::scheduler {

absl::Status TenantQuotas::TakeSubmit(const std::string& tenant, double now_seconds) {
  const QuotaLimits& limits = config_.For(tenant);
  if (limits.submits_per_second <= 0) return absl::OkStatus();
  auto [it, fresh] = buckets_.try_emplace(tenant);
  Bucket& bucket = it->second;
  if (fresh) {
    bucket.tokens = limits.submit_burst;
  } else {
    bucket.tokens = std::min(limits.submit_burst,
                             bucket.tokens + (now_seconds - bucket.updated) *
                                                 limits.submits_per_second);
  }
  bucket.updated = now_seconds;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return absl::OkStatus();
  }
  const double wait = (1 - bucket.tokens) / limits.submits_per_second;
  return absl::ResourceExhaustedError(absl::StrFormat(
      "tenant '%s': more than %g submits per second (burst %g); retry after %.2f s", tenant,
      limits.submits_per_second, limits.submit_burst, wait));
}

absl::Status TenantQuotas::CheckActive(const std::string& tenant, int active) const {
  const QuotaLimits& limits = config_.For(tenant);
  if (limits.max_active_jobs <= 0 || active < limits.max_active_jobs) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("tenant '", tenant, "': ", active, " jobs queued or running, the most allowed is ",
                   limits.max_active_jobs, "; retry after one finishes"));
}

void TenantQuotas::Prune(GpuLedger& ledger, double now_unix) {
  while (!ledger.entries.empty() && ledger.entries.front().first <= now_unix - kGpuWindowSeconds) {
    ledger.sum -= ledger.entries.front().second;
    ledger.entries.pop_front();
  }
  if (ledger.entries.empty()) ledger.sum = 0;  // no drift from the subtractions
}

void TenantQuotas::AddGpuSeconds(const std::string& tenant, double finished_unix,
                                 double gpu_seconds) {
  if (!(gpu_seconds > 0)) return;
  GpuLedger& ledger = gpu_[tenant];
  auto at = std::upper_bound(
      ledger.entries.begin(), ledger.entries.end(), finished_unix,
      [](double t, const std::pair<double, double>& entry) { return t < entry.first; });
  ledger.entries.insert(at, {finished_unix, gpu_seconds});
  ledger.sum += gpu_seconds;
}

double TenantQuotas::GpuSecondsUsed(const std::string& tenant, double now_unix) {
  auto it = gpu_.find(tenant);
  if (it == gpu_.end()) return 0;
  Prune(it->second, now_unix);
  return it->second.sum;
}

std::map<std::string, double> TenantQuotas::GpuSecondsByTenant(double now_unix) {
  std::map<std::string, double> used;
  for (auto& [tenant, ledger] : gpu_) {
    Prune(ledger, now_unix);
    used[tenant] = ledger.sum;
  }
  return used;
}

absl::Status TenantQuotas::CheckGpuBudget(const std::string& tenant, double now_unix) {
  const double budget = config_.For(tenant).gpu_seconds_per_day;
  if (budget <= 0) return absl::OkStatus();
  const double used = GpuSecondsUsed(tenant, now_unix);
  if (used < budget) return absl::OkStatus();
  // The oldest entries leave the window first: wait until the sum left is under the budget.
  double left = used;
  double frees_at = now_unix;
  for (const auto& [finished, seconds] : gpu_.at(tenant).entries) {
    left -= seconds;
    frees_at = finished + kGpuWindowSeconds;
    if (left < budget) break;
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "tenant '%s': %.1f GPU-seconds used in the last 24 h, gpu_seconds_per_day is %g; retry "
      "after %.2f s",
      tenant, used, budget, std::max(0.0, frees_at - now_unix)));
}

}  // namespace turbovid::scheduler
