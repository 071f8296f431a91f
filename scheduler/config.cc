// configs/scheduler.yaml -> SchedulerConfig. Unknown keys are errors (typos must not pass).
#include "scheduler/config.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/status_macros.h"

namespace turbovid::scheduler {
namespace {

using common::ConfigNode;

absl::Status ReadAdmission(const ConfigNode& node, AdmissionLimits* out) {
  TV_RETURN_IF_ERROR(node.CheckKeys({"max_queue_length", "max_prompt_bytes", "max_image_bytes",
                                     "max_image_side_pixels", "max_num_frames", "max_pixels",
                                     "max_abs_priority", "max_client_request_id_bytes"}));
  TV_RETURN_IF_ERROR(node.Read("max_queue_length", &out->max_queue_length));
  TV_RETURN_IF_ERROR(node.Read("max_prompt_bytes", &out->max_prompt_bytes));
  TV_RETURN_IF_ERROR(node.Read("max_image_bytes", &out->max_image_bytes));
  TV_RETURN_IF_ERROR(node.Read("max_image_side_pixels", &out->max_image_side_pixels));
  TV_RETURN_IF_ERROR(node.Read("max_num_frames", &out->max_num_frames));
  TV_RETURN_IF_ERROR(node.Read("max_pixels", &out->max_pixels));
  TV_RETURN_IF_ERROR(node.Read("max_abs_priority", &out->max_abs_priority));
  TV_RETURN_IF_ERROR(node.Read("max_client_request_id_bytes", &out->max_client_request_id_bytes));
  return absl::OkStatus();
}

absl::Status ReadAuth(const ConfigNode& node, AuthConfig* out) {
  TV_RETURN_IF_ERROR(node.CheckKeys({"mode", "api_keys_file", "worker_tokens_file"}));
  std::string mode = "required";
  TV_RETURN_IF_ERROR(node.Read("mode", &mode));
  if (mode != "required" && mode != "off") {
    return node.Error(absl::StrCat("mode: '", mode, "' is not 'required' or 'off'"));
  }
  out->off = mode == "off";
  TV_RETURN_IF_ERROR(node.Read("api_keys_file", &out->api_keys_file));
  TV_RETURN_IF_ERROR(node.Read("worker_tokens_file", &out->worker_tokens_file));
  return absl::OkStatus();
}

absl::Status ReadTls(const ConfigNode& node, TlsConfig* out) {
  TV_RETURN_IF_ERROR(node.CheckKeys({"cert_file", "key_file", "client_ca_file"}));
  TV_RETURN_IF_ERROR(node.Read("cert_file", &out->cert_file));
  TV_RETURN_IF_ERROR(node.Read("key_file", &out->key_file));
  TV_RETURN_IF_ERROR(node.Read("client_ca_file", &out->client_ca_file));
  return absl::OkStatus();
}

absl::Status ReadQuotaLimits(const ConfigNode& node, QuotaLimits* out) {
  TV_RETURN_IF_ERROR(node.Read("submits_per_second", &out->submits_per_second));
  TV_RETURN_IF_ERROR(node.Read("submit_burst", &out->submit_burst));
  TV_RETURN_IF_ERROR(node.Read("max_active_jobs", &out->max_active_jobs));
  TV_RETURN_IF_ERROR(node.Read("gpu_seconds_per_day", &out->gpu_seconds_per_day));
  return absl::OkStatus();
}

// quotas: the defaults, and `tenants: {name: {...}}`, each entry the defaults with its own keys.
absl::Status ReadQuotas(const ConfigNode& node, QuotaConfig* out) {
  TV_RETURN_IF_ERROR(node.CheckKeys({"submits_per_second", "submit_burst", "max_active_jobs",
                                     "gpu_seconds_per_day", "tenants"}));
  TV_RETURN_IF_ERROR(ReadQuotaLimits(node, out));
  if (node.Has("tenants")) {
    TV_ASSIGN_OR_RETURN(ConfigNode tenants, node.Child("tenants"));
    if (!tenants.IsMap()) return tenants.Error("expected a map of tenant name -> quotas");
    for (const std::string& name : tenants.Keys()) {
      TV_ASSIGN_OR_RETURN(ConfigNode tenant, tenants.Child(name));
      TV_RETURN_IF_ERROR(tenant.CheckKeys(
          {"submits_per_second", "submit_burst", "max_active_jobs", "gpu_seconds_per_day"}));
      QuotaLimits limits = *out;  // the defaults (the base of QuotaConfig)
      TV_RETURN_IF_ERROR(ReadQuotaLimits(tenant, &limits));
      out->tenants[name] = limits;
    }
  }
  return absl::OkStatus();
}

absl::Status ReadRetention(const ConfigNode& node, RetentionConfig* out) {
  TV_RETURN_IF_ERROR(node.CheckKeys(
      {"finished_job_ttl_seconds", "sweep_interval_seconds", "artifact_store_max_bytes"}));
  TV_RETURN_IF_ERROR(node.Read("finished_job_ttl_seconds", &out->finished_job_ttl_seconds));
  TV_RETURN_IF_ERROR(node.Read("sweep_interval_seconds", &out->sweep_interval_seconds));
  TV_RETURN_IF_ERROR(node.Read("artifact_store_max_bytes", &out->artifact_store_max_bytes));
  return absl::OkStatus();
}

absl::Status ValidateQuotaLimits(const std::string& key, const QuotaLimits& q) {
  if (!(q.submits_per_second >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ".submits_per_second: must be >= 0 (0 = unlimited)"));
  }
  if (!(q.submit_burst > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ".submit_burst: ", q.submit_burst,
                                                   " must be > 0"));
  }
  if (q.submits_per_second > 0 && q.submit_burst < 1) {
    return absl::InvalidArgumentError(absl::StrCat(key, ".submit_burst: must be >= 1"));
  }
  if (q.max_active_jobs < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ".max_active_jobs: must be >= 0 (0 = unlimited)"));
  }
  if (!(q.gpu_seconds_per_day >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ".gpu_seconds_per_day: must be >= 0 (0 = unlimited)"));
  }
  return absl::OkStatus();
}

absl::Status ReadPlacement(const ConfigNode& node, PlacementConfig* out) {
  TV_RETURN_IF_ERROR(
      node.CheckKeys({"service_times_file", "default_slo_seconds", "target_utilization",
                      "load_window_seconds", "max_deadline_seconds", "priority_classes"}));
  TV_RETURN_IF_ERROR(node.Read("service_times_file", &out->service_times_file));
  TV_RETURN_IF_ERROR(node.Read("default_slo_seconds", &out->default_slo_seconds));
  TV_RETURN_IF_ERROR(node.Read("target_utilization", &out->target_utilization));
  TV_RETURN_IF_ERROR(node.Read("load_window_seconds", &out->load_window_seconds));
  TV_RETURN_IF_ERROR(node.Read("max_deadline_seconds", &out->max_deadline_seconds));
  if (node.Has("priority_classes")) {
    TV_ASSIGN_OR_RETURN(ConfigNode classes, node.Child("priority_classes"));
    if (!classes.IsMap()) return classes.Error("expected a map of class name -> settings");
    out->priority_classes.clear();  // the file's list replaces the defaults
    for (const std::string& name : classes.Keys()) {
      TV_ASSIGN_OR_RETURN(ConfigNode cls, classes.Child(name));
      TV_RETURN_IF_ERROR(cls.CheckKeys({"priority", "deadline_seconds"}));
      PriorityClass& pc = out->priority_classes[name];
      TV_RETURN_IF_ERROR(cls.Read("priority", &pc.priority));
      TV_RETURN_IF_ERROR(cls.Read("deadline_seconds", &pc.deadline_seconds));
    }
  }
  return absl::OkStatus();
}

absl::Status Positive(const char* key, double value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", value, " must be > 0"));
}

absl::Status ValidatePlacement(const PlacementConfig& p, int max_abs_priority) {
  TV_RETURN_IF_ERROR(Positive("placement.default_slo_seconds", p.default_slo_seconds));
  TV_RETURN_IF_ERROR(Positive("placement.load_window_seconds", p.load_window_seconds));
  TV_RETURN_IF_ERROR(Positive("placement.max_deadline_seconds", p.max_deadline_seconds));
  if (!(p.target_utilization > 0 && p.target_utilization <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("placement.target_utilization: ", p.target_utilization, " is not in (0, 1]"));
  }
  for (const auto& [name, pc] : p.priority_classes) {
    const std::string key = absl::StrCat("placement.priority_classes.", name);
    if (name.empty() || name.size() > 64 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": a class name is 1-64 characters of [a-z0-9_-]"));
    }
    if (pc.priority > max_abs_priority || pc.priority < -max_abs_priority) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".priority: ", pc.priority,
                                                     " is not in [-", max_abs_priority, ", ",
                                                     max_abs_priority, "]"));
    }
    if (!(pc.deadline_seconds >= 0 && pc.deadline_seconds <= p.max_deadline_seconds)) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ".deadline_seconds: ", pc.deadline_seconds, " is not in [0, ",
                       p.max_deadline_seconds, "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SchedulerConfig> LoadSchedulerConfig(const std::string& path) {
  TV_ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::LoadFile(path));
  SchedulerConfig config;
  TV_RETURN_IF_ERROR(root.CheckKeys({"listen_address",
                                     "http_address",
                                     "http_port",
                                     "api_http_address",
                                     "api_http_port",
                                     "http_threads",
                                     "http_request_timeout_ms",
                                     "grpc_reflection",
                                     "auth",
                                     "tls",
                                     "db_path",
                                     "db_synchronous_full",
                                     "allow_empty_db",
                                     "db_integrity_check_interval_seconds",
                                     "db_backup_dir",
                                     "db_backup_interval_seconds",
                                     "db_backup_keep",
                                     "artifact_dir",
                                     "check_worker_results",
                                     "models_file",
                                     "lease_seconds",
                                     "heartbeat_interval_seconds",
                                     "max_attempts",
                                     "unservable_job_timeout_seconds",
                                     "step_ewma_alpha",
                                     "max_watch_streams_per_client",
                                     "max_watch_streams",
                                     "shutdown_grace_seconds",
                                     "max_message_bytes",
                                     "admission",
                                     "quotas",
                                     "retention",
                                     "placement"}));
  TV_RETURN_IF_ERROR(root.Read("listen_address", &config.listen_address));
  TV_RETURN_IF_ERROR(root.Read("http_address", &config.http_address));
  TV_RETURN_IF_ERROR(root.Read("http_port", &config.http_port));
  TV_RETURN_IF_ERROR(root.Read("api_http_address", &config.api_http_address));
  TV_RETURN_IF_ERROR(root.Read("api_http_port", &config.api_http_port));
  TV_RETURN_IF_ERROR(root.Read("http_threads", &config.http_threads));
  TV_RETURN_IF_ERROR(root.Read("http_request_timeout_ms", &config.http_request_timeout_ms));
  TV_RETURN_IF_ERROR(root.Read("grpc_reflection", &config.grpc_reflection));
  if (root.Has("auth")) {
    TV_ASSIGN_OR_RETURN(ConfigNode auth, root.Child("auth"));
    TV_RETURN_IF_ERROR(ReadAuth(auth, &config.auth));
  }
  if (root.Has("tls")) {
    TV_ASSIGN_OR_RETURN(ConfigNode tls, root.Child("tls"));
    TV_RETURN_IF_ERROR(ReadTls(tls, &config.tls));
  }
  TV_RETURN_IF_ERROR(root.Read("db_path", &config.db_path));
  TV_RETURN_IF_ERROR(root.Read("db_synchronous_full", &config.db_synchronous_full));
  TV_RETURN_IF_ERROR(root.Read("allow_empty_db", &config.allow_empty_db));
  TV_RETURN_IF_ERROR(root.Read("db_integrity_check_interval_seconds",
                               &config.db_integrity_check_interval_seconds));
  TV_RETURN_IF_ERROR(root.Read("db_backup_dir", &config.db_backup_dir));
  TV_RETURN_IF_ERROR(root.Read("db_backup_interval_seconds", &config.db_backup_interval_seconds));
  TV_RETURN_IF_ERROR(root.Read("db_backup_keep", &config.db_backup_keep));
  TV_RETURN_IF_ERROR(root.Read("artifact_dir", &config.artifact_dir));
  TV_RETURN_IF_ERROR(root.Read("check_worker_results", &config.check_worker_results));
  TV_RETURN_IF_ERROR(root.Read("models_file", &config.models_file));
  TV_RETURN_IF_ERROR(root.Read("lease_seconds", &config.lease_seconds));
  TV_RETURN_IF_ERROR(root.Read("heartbeat_interval_seconds", &config.heartbeat_interval_seconds));
  TV_RETURN_IF_ERROR(root.Read("max_attempts", &config.max_attempts));
  TV_RETURN_IF_ERROR(
      root.Read("max_watch_streams_per_client", &config.max_watch_streams_per_client));
  TV_RETURN_IF_ERROR(root.Read("max_watch_streams", &config.max_watch_streams));
  TV_RETURN_IF_ERROR(
      root.Read("unservable_job_timeout_seconds", &config.unservable_job_timeout_seconds));
  TV_RETURN_IF_ERROR(root.Read("step_ewma_alpha", &config.step_ewma_alpha));
  TV_RETURN_IF_ERROR(root.Read("shutdown_grace_seconds", &config.shutdown_grace_seconds));
  TV_RETURN_IF_ERROR(root.Read("max_message_bytes", &config.max_message_bytes));
  if (root.Has("quotas")) {
    TV_ASSIGN_OR_RETURN(ConfigNode quotas, root.Child("quotas"));
    TV_RETURN_IF_ERROR(ReadQuotas(quotas, &config.quotas));
  }
  if (root.Has("retention")) {
    TV_ASSIGN_OR_RETURN(ConfigNode retention, root.Child("retention"));
    TV_RETURN_IF_ERROR(ReadRetention(retention, &config.retention));
  }
  if (root.Has("admission")) {
    TV_ASSIGN_OR_RETURN(ConfigNode admission, root.Child("admission"));
    TV_RETURN_IF_ERROR(ReadAdmission(admission, &config.admission));
  }
  if (root.Has("placement")) {
    TV_ASSIGN_OR_RETURN(ConfigNode placement, root.Child("placement"));
    TV_RETURN_IF_ERROR(ReadPlacement(placement, &config.placement));
  }
  absl::Status valid = ValidateSchedulerConfig(config);
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", valid.message()));
  return config;
}

std::string DbBackupDir(const SchedulerConfig& config) {
  if (!config.db_backup_dir.empty()) return config.db_backup_dir;
  const std::filesystem::path parent = std::filesystem::path(config.db_path).parent_path();
  return (parent.empty() ? std::filesystem::path("backups") : parent / "backups").string();
}

absl::Status ValidateSchedulerConfig(const SchedulerConfig& c) {
  if (c.listen_address.empty()) return absl::InvalidArgumentError("listen_address: empty");
  if (c.http_port < 0 || c.http_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("http_port: ", c.http_port, " not a port"));
  }
  if (c.api_http_port < -1 || c.api_http_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("api_http_port: ", c.api_http_port, " not a port (-1 = off)"));
  }
  if (c.http_threads < 2 || c.http_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_threads: ", c.http_threads, " is not in [2, 1024]"));
  }
  TV_RETURN_IF_ERROR(Positive("http_request_timeout_ms", c.http_request_timeout_ms));
  if (c.db_path.empty()) return absl::InvalidArgumentError("db_path: empty");
  if (c.db_integrity_check_interval_seconds < 0) {
    return absl::InvalidArgumentError("db_integrity_check_interval_seconds: must be >= 0");
  }
  if (c.db_backup_interval_seconds < 0) {
    return absl::InvalidArgumentError("db_backup_interval_seconds: must be >= 0");
  }
  TV_RETURN_IF_ERROR(Positive("db_backup_keep", c.db_backup_keep));
  if (c.artifact_dir.empty()) return absl::InvalidArgumentError("artifact_dir: empty");
  if (c.models_file.empty()) return absl::InvalidArgumentError("models_file: empty");
  TV_RETURN_IF_ERROR(Positive("lease_seconds", c.lease_seconds));
  TV_RETURN_IF_ERROR(Positive("heartbeat_interval_seconds", c.heartbeat_interval_seconds));
  if (c.heartbeat_interval_seconds * 2 > c.lease_seconds) {
    return absl::InvalidArgumentError(
        absl::StrCat("heartbeat_interval_seconds: ", c.heartbeat_interval_seconds,
                     " must be at most half of lease_seconds (", c.lease_seconds, ")"));
  }
  TV_RETURN_IF_ERROR(Positive("max_attempts", c.max_attempts));
  TV_RETURN_IF_ERROR(Positive("max_watch_streams_per_client", c.max_watch_streams_per_client));
  TV_RETURN_IF_ERROR(Positive("max_watch_streams", c.max_watch_streams));
  if (!(c.unservable_job_timeout_seconds >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unservable_job_timeout_seconds: ", c.unservable_job_timeout_seconds, " must be >= 0"));
  }
  if (c.step_ewma_alpha <= 0 || c.step_ewma_alpha > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("step_ewma_alpha: ", c.step_ewma_alpha, " is not in (0, 1]"));
  }
  if (c.shutdown_grace_seconds < 0) {
    return absl::InvalidArgumentError("shutdown_grace_seconds: must be >= 0");
  }
  if (c.max_message_bytes < (1 << 20) || c.max_message_bytes > (1ll << 31) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_bytes: ", c.max_message_bytes, " is not in [1 MiB, 2 GiB)"));
  }
  TV_RETURN_IF_ERROR(ValidateQuotaLimits("quotas", c.quotas));
  for (const auto& [tenant, limits] : c.quotas.tenants) {
    TV_RETURN_IF_ERROR(ValidateQuotaLimits(absl::StrCat("quotas.tenants.", tenant), limits));
  }
  if (!(c.retention.finished_job_ttl_seconds >= 0)) {
    return absl::InvalidArgumentError(
        "retention.finished_job_ttl_seconds: must be >= 0 (0 = keep forever)");
  }
  TV_RETURN_IF_ERROR(
      Positive("retention.sweep_interval_seconds", c.retention.sweep_interval_seconds));
  if (c.retention.artifact_store_max_bytes < 0) {
    return absl::InvalidArgumentError(
        "retention.artifact_store_max_bytes: must be >= 0 (0 = no limit)");
  }
  const AdmissionLimits& a = c.admission;
  TV_RETURN_IF_ERROR(Positive("admission.max_queue_length", a.max_queue_length));
  TV_RETURN_IF_ERROR(Positive("admission.max_prompt_bytes", a.max_prompt_bytes));
  TV_RETURN_IF_ERROR(Positive("admission.max_image_bytes", static_cast<double>(a.max_image_bytes)));
  TV_RETURN_IF_ERROR(Positive("admission.max_image_side_pixels", a.max_image_side_pixels));
  TV_RETURN_IF_ERROR(Positive("admission.max_num_frames", a.max_num_frames));
  TV_RETURN_IF_ERROR(Positive("admission.max_pixels", static_cast<double>(a.max_pixels)));
  TV_RETURN_IF_ERROR(
      Positive("admission.max_client_request_id_bytes", a.max_client_request_id_bytes));
  if (a.max_abs_priority < 0) {
    return absl::InvalidArgumentError("admission.max_abs_priority: must be >= 0");
  }
  // Workers and clients are built with common/limits.h caps: admission may only lower them.
  auto at_most = [](const std::string& key, int64_t value, int64_t cap) {
    if (value <= cap) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": ", value, " > ", cap, " (the cap every gRPC channel is sized for)"));
  };
  TV_RETURN_IF_ERROR(
      at_most("admission.max_image_bytes", a.max_image_bytes, common::kMaxImageBytes));
  TV_RETURN_IF_ERROR(
      at_most("admission.max_prompt_bytes", a.max_prompt_bytes, common::kMaxPromptBytes));
  TV_RETURN_IF_ERROR(at_most("admission.max_client_request_id_bytes", a.max_client_request_id_bytes,
                             common::kMaxClientRequestIdBytes));
  TV_RETURN_IF_ERROR(ValidatePlacement(c.placement, a.max_abs_priority));
  if (c.max_message_bytes < common::kMaxRequestBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_bytes: ", c.max_message_bytes, " < ", common::kMaxRequestBytes,
                     " (the largest admitted request or AssignTask)"));
  }
  return absl::OkStatus();
}

}  // namespace turbovid::scheduler
