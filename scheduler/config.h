// The scheduler's one typed config struct (configs/scheduler.yaml), validated once at startup.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/limits.h"
#include "scheduler/quota.h"

namespace turbovid::scheduler {

struct AdmissionLimits {
  // The byte limits may lower common/limits.h's caps, never raise them (every channel is sized
  // for those).
  int max_queue_length = 10000;  // queued jobs per model; more -> RESOURCE_EXHAUSTED
  int max_prompt_bytes = common::kMaxPromptBytes;    // prompt and negative_prompt, UTF-8 bytes
  int64_t max_image_bytes = common::kMaxImageBytes;  // encoded I2V image
  int max_image_side_pixels = 8192;  // decoded width/height read from the image header
  int max_num_frames = 161;          // output frames (4k+1)
  int64_t max_pixels = 1280 * 720;   // width * height of the output
  int max_abs_priority = 1000;       // |priority|
  int max_client_request_id_bytes = common::kMaxClientRequestIdBytes;
};

// Client and worker credentials (docs/security.md).
struct AuthConfig {
  bool off = false;                // auth.mode: off (must be said explicitly); default required
  std::string api_keys_file;       // hashed API keys -> tenants (turbovid-scheduler keys ...)
  std::string worker_tokens_file;  // hashed worker tokens
};

// TLS of every listener (gRPC, ops HTTP, job HTTP); PEM files, all empty = plaintext. Re-read
// without a restart when the files change or on SIGHUP (common/tls.h, docs/security.md).
struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  // set: mutual TLS on gRPC and the job HTTP listener (not the ops port: probes have no
  // certificate); clients and workers present certificates
  std::string client_ca_file;
};

// A named urgency a request may carry (SubmitVideoRequest.priority_class).
struct PriorityClass {
  int priority = 0;             // queue priority when the request's own priority is 0
  double deadline_seconds = 0;  // deadline after submit when the request has none; 0 = none
};

// Cost- and deadline-aware placement and the autoscaling signal (docs/fleet.md).
struct PlacementConfig {
  // Prices per node class and prior service times (configs/service-times.yaml); "" = none:
  // every price 0, estimates only from measured jobs.
  std::string service_times_file;
  double default_slo_seconds = 300;         // autoscaling: the slack of a job without a deadline
  double target_utilization = 0.8;          // autoscaling: busy share the arrival term aims at
  double load_window_seconds = 300;         // averaging window of the offered load per node class
  double max_deadline_seconds = 7 * 86400;  // deadlines further out are refused
  std::map<std::string, PriorityClass> priority_classes = {
      {"interactive", {100, 60}}, {"standard", {0, 600}}, {"batch", {-100, 0}}};
};

// Expiry of finished jobs and the artifact store's size (docs/operations.md).
struct RetentionConfig {
  // Succeeded, failed and cancelled jobs (row and video) are removed this long after they
  // finished; 0 = kept forever. Jobs not final are never removed.
  double finished_job_ttl_seconds = 7 * 86400;
  double sweep_interval_seconds = 60;  // how often the sweeper looks for expired jobs
  // While the artifact store holds this many bytes or more, submits are refused
  // (RESOURCE_EXHAUSTED); results of jobs already admitted are still stored. 0 = no limit.
  int64_t artifact_store_max_bytes = 0;
};

struct SchedulerConfig {
  std::string listen_address = "0.0.0.0:50051";  // gRPC host:port
  std::string http_address = "0.0.0.0";          // ops port: /metrics /healthz /readyz only
  int http_port = 9090;
  std::string api_http_address = "127.0.0.1";    // the JSON/HTTP job gateway (/v1/...)
  int api_http_port = 8080;                      // -1 = no HTTP job gateway; 0 = any free port
  int http_threads = 1024;  // civetweb threads per HTTP listener: idle connections served at once
  int http_request_timeout_ms = 10000;  // a request must arrive within this (slow-loris)
  bool grpc_reflection = false;
  AuthConfig auth;
  TlsConfig tls;
  std::string db_path = "turbovid.db";  // SQLite job store (WAL)
  bool db_synchronous_full = false;     // fsync every commit (power-loss durable)
  // An existing database that is empty (0 bytes), vanished or lost its jobs table while its
  // `<db_path>.initialized` marker exists is refused at start unless this is set.
  bool allow_empty_db = false;
  double db_integrity_check_interval_seconds = 3600;  // PRAGMA quick_check while running; 0 = off
  std::string db_backup_dir;                          // "" = <dir of db_path>/backups
  double db_backup_interval_seconds = 3600;           // online backups; 0 = off
  int db_backup_keep = 24;                            // newest backups kept
  std::string artifact_dir = "artifacts";             // finished MP4s
  // Each uploaded result is parsed as MP4 and its video track's frames and size compared with
  // the job before it is stored (docs/security.md); false only for tests of the scheduler core
  // that upload placeholder bytes.
  bool check_worker_results = true;
  std::string models_file = "configs/models.yaml";
  double lease_seconds = 15;              // silent worker loses its task after this
  double heartbeat_interval_seconds = 2;  // told to workers in Registered
  int max_attempts = 3;                   // worker losses before a job FAILS
  // A queued job that no registered worker can serve (none lists its model and variant on a
  // node class that can run it) says so in Job.status_message and FAILS after this long;
  // 0 = it waits for a worker forever.
  double unservable_job_timeout_seconds = 600;
  int max_watch_streams_per_client = 64;  // open WatchJob streams per peer host; more refused
  int max_watch_streams = 10000;          // open WatchJob streams in all
  double step_ewma_alpha = 0.3;           // weight of the newest step time
  double shutdown_grace_seconds = 5;      // in-flight RPCs get this long on SIGTERM
  int64_t max_message_bytes = common::kGrpcMessageBytes;  // gRPC cap, >= kMaxRequestBytes
  AdmissionLimits admission;
  QuotaConfig quotas;  // per tenant (docs/security.md)
  RetentionConfig retention;
  PlacementConfig placement;
};

// Reads and validates `path`; errors name the file, line and key.
absl::StatusOr<SchedulerConfig> LoadSchedulerConfig(const std::string& path);
// db_backup_dir, or <dir of db_path>/backups when it is empty.
std::string DbBackupDir(const SchedulerConfig& config);
// Checks ranges (also after flags override fields).
absl::Status ValidateSchedulerConfig(const SchedulerConfig& config);

}  // namespace turbovid::scheduler
