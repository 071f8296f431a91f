// The worker's typed configuration: YAML file (configs/worker-*.yaml) + command-line overrides,
// validated once at startup with errors that name the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace turbovid::worker {

struct ModelEntry {
  std::string model_id;  // catalog id, e.g. "wan2.1-t2v-1.3b"
  std::string variant;   // "turbo", "turbo-int8", "turbo-fp8", "original"
  std::string path;      // checkpoint folder given to engine::Pipeline::Load
  bool preload = true;   // loaded at startup; false = loaded by the first task that needs it
  // How the DiT block linears are held: "checkpoint" (as stored: bf16, or int8 for a -quant
  // checkpoint) or "fp8" (quantised to e4m3 at load from a bf16 checkpoint). "" = by the
  // variant: fp8 for "turbo-fp8", else checkpoint.
  std::string weights = "";
};

// Whether `m` loads its DiT block linears as FP8 e4m3 (ModelEntry::weights).
bool Fp8Weights(const ModelEntry& m);

struct WorkerConfig {
  std::string worker_id;                          // "" = hostname:pid
  std::string node_class = "cpu";                 // h100 | h200 | rtx5090 | cpu
  std::string scheduler_address = "127.0.0.1:50051";  // WorkerHub gRPC endpoint
  // The worker token (docs/security.md): read from this file, else from the environment variable
  // TURBOVID_WORKER_TOKEN; sent as `authorization: Bearer <token>` on the Connect stream.
  std::string scheduler_token_file;
  // TLS to the scheduler: its CA (set = TLS), and this worker's certificate for mutual TLS.
  std::string scheduler_ca_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string backend = "cpu";                    // cpu | cuda
  int device = 0;                                 // CUDA device index
  std::string gpu_name;                           // "" = detected ("cpu" on the CPU backend)
  int64_t memory_bytes = 0;                       // 0 = detected (host RAM on the CPU backend)
  // A worker group (docs/parallelism.md §5): tensor_parallel_size x sequence_parallel_size
  // processes, one per GPU (devices device .. device + n - 1), serve as this one worker; the
  // process started by the operator is rank 0 and starts the others. gpu_count is their number
  // (1 = derived from the two sizes).
  int gpu_count = 1;
  int tensor_parallel_size = 1;
  int sequence_parallel_size = 1;
  double group_timeout_seconds = 120;  // ranks to find each other at startup
  // A group's ranks split the VAE decode by rows (docs/parallelism.md §4); false: rank 0
  // decodes alone while the others wait.
  bool split_vae_decode = true;
  int group_rank = 0;                  // set on ranks 1.. by the leader (--group-rank)
  std::string group_name;              // their group's control channel (--group-name)
  std::vector<ModelEntry> models;
  // Bytes of model weights held at once (least-recently-used idle models are evicted to fit a
  // load); 0 = memory_bytes (the device's memory, host RAM on the CPU backend).
  int64_t memory_budget_bytes = 0;
  // Device memory budget per GPU in GiB (docs/memory.md): the engine's allocator holds weights,
  // activations and workspaces within it, each job is planned to fit it (residency of the
  // experts and umT5) or refused at admission, and the scheduler places by it. 0 = none.
  double memory_limit_gib = 0;
  // What an hour of this node costs, in any currency (exported for cost per video; 0 = unset).
  double price_per_hour = 0;
  std::string http_address = "0.0.0.0";           // /metrics /healthz /readyz
  int http_port = 9101;                           // 0 = any free port
  // gRPC health service + reflection (host:port; port 0 = any free port; empty = off).
  std::string grpc_listen = "0.0.0.0:0";
  double heartbeat_seconds = 2.0;                 // until Registered says otherwise
  double register_timeout_seconds = 10.0;         // no Registered reply → reconnect
  double reconnect_initial_seconds = 0.5;
  double reconnect_max_seconds = 10.0;
  double reconnect_jitter = 0.2;                  // ± fraction of each backoff delay
  int result_chunk_bytes = 256 * 1024;
  double progress_interval_seconds = 0.25;        // min gap of in-stage fraction updates
  std::string log_level = "info";

  int group_size() const { return tensor_parallel_size * sequence_parallel_size; }
  int64_t memory_limit_bytes() const {
    return static_cast<int64_t>(memory_limit_gib * 1024.0 * 1024.0 * 1024.0);
  }
};

// Reads a YAML file (unknown keys are errors).
absl::StatusOr<WorkerConfig> LoadWorkerConfig(const std::string& path);
// Applies flags over `config` (see Usage()). `--config` is handled by the caller.
absl::Status ApplyWorkerFlags(const std::vector<std::string>& args, WorkerConfig* config);
// Checks ranges and required keys; errors name the key.
absl::Status ValidateWorkerConfig(const WorkerConfig& config);
// Parses "MODEL_ID:VARIANT=PATH" (the --model and --model-lazy flags; `flag` names it in errors).
absl::StatusOr<ModelEntry> ParseModelFlag(const std::string& value,
                                          const std::string& flag = "--model");
const char* WorkerUsage();

}  // namespace turbovid::worker
