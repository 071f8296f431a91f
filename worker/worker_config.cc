// LoadWorkerConfig / ApplyWorkerFlags / ValidateWorkerConfig.
#include "worker/worker_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/status_macros.h"
#include "engine/comm/parallel.h"

namespace turbovid::worker {
namespace {

absl::Status ReadModels(const common::ConfigNode& root, WorkerConfig* c) {
  if (!root.Has("models")) return absl::OkStatus();
  TV_ASSIGN_OR_RETURN(common::ConfigNode models, root.Child("models"));
  TV_ASSIGN_OR_RETURN(std::vector<common::ConfigNode> items, models.Elements());
  c->models.clear();
  for (const common::ConfigNode& item : items) {
    TV_RETURN_IF_ERROR(item.CheckKeys({"model_id", "variant", "path", "preload", "weights"}));
    ModelEntry m;
    TV_RETURN_IF_ERROR(item.Require("model_id", &m.model_id));
    TV_RETURN_IF_ERROR(item.Require("variant", &m.variant));
    TV_RETURN_IF_ERROR(item.Require("path", &m.path));
    TV_RETURN_IF_ERROR(item.Read("preload", &m.preload));
    TV_RETURN_IF_ERROR(item.Read("weights", &m.weights));
    c->models.push_back(std::move(m));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WorkerConfig> LoadWorkerConfig(const std::string& path) {
  TV_ASSIGN_OR_RETURN(common::ConfigNode root, common::ConfigNode::LoadFile(path));
  WorkerConfig c;
  if (root.IsNull()) return c;
  TV_RETURN_IF_ERROR(root.CheckKeys(
      {"worker_id", "node_class", "scheduler", "backend", "device", "gpu_name", "memory_bytes",
       "gpu_count", "tensor_parallel_size", "sequence_parallel_size", "group_timeout_seconds",
       "split_vae_decode",
       "models", "memory_budget_bytes", "memory_limit_gib", "price_per_hour", "http", "grpc_listen",
       "heartbeat_seconds", "register_timeout_seconds", "reconnect", "result_chunk_bytes",
       "progress_interval_seconds", "log_level", "scheduler_token_file", "scheduler_ca_file",
       "client_cert_file", "client_key_file"}));
  TV_RETURN_IF_ERROR(root.Read("scheduler_token_file", &c.scheduler_token_file));
  TV_RETURN_IF_ERROR(root.Read("scheduler_ca_file", &c.scheduler_ca_file));
  TV_RETURN_IF_ERROR(root.Read("client_cert_file", &c.client_cert_file));
  TV_RETURN_IF_ERROR(root.Read("client_key_file", &c.client_key_file));
  TV_RETURN_IF_ERROR(root.Read("worker_id", &c.worker_id));
  TV_RETURN_IF_ERROR(root.Read("node_class", &c.node_class));
  TV_RETURN_IF_ERROR(root.Read("scheduler", &c.scheduler_address));
  TV_RETURN_IF_ERROR(root.Read("backend", &c.backend));
  TV_RETURN_IF_ERROR(root.Read("device", &c.device));
  TV_RETURN_IF_ERROR(root.Read("gpu_name", &c.gpu_name));
  TV_RETURN_IF_ERROR(root.Read("memory_bytes", &c.memory_bytes));
  TV_RETURN_IF_ERROR(root.Read("gpu_count", &c.gpu_count));
  TV_RETURN_IF_ERROR(root.Read("tensor_parallel_size", &c.tensor_parallel_size));
  TV_RETURN_IF_ERROR(root.Read("sequence_parallel_size", &c.sequence_parallel_size));
  TV_RETURN_IF_ERROR(root.Read("group_timeout_seconds", &c.group_timeout_seconds));
  TV_RETURN_IF_ERROR(root.Read("split_vae_decode", &c.split_vae_decode));
  TV_RETURN_IF_ERROR(ReadModels(root, &c));
  TV_RETURN_IF_ERROR(root.Read("memory_budget_bytes", &c.memory_budget_bytes));
  TV_RETURN_IF_ERROR(root.Read("memory_limit_gib", &c.memory_limit_gib));
  TV_RETURN_IF_ERROR(root.Read("price_per_hour", &c.price_per_hour));
  if (root.Has("http")) {
    TV_ASSIGN_OR_RETURN(common::ConfigNode http, root.Child("http"));
    TV_RETURN_IF_ERROR(http.CheckKeys({"address", "port"}));
    TV_RETURN_IF_ERROR(http.Read("address", &c.http_address));
    TV_RETURN_IF_ERROR(http.Read("port", &c.http_port));
  }
  TV_RETURN_IF_ERROR(root.Read("grpc_listen", &c.grpc_listen));
  TV_RETURN_IF_ERROR(root.Read("heartbeat_seconds", &c.heartbeat_seconds));
  TV_RETURN_IF_ERROR(root.Read("register_timeout_seconds", &c.register_timeout_seconds));
  if (root.Has("reconnect")) {
    TV_ASSIGN_OR_RETURN(common::ConfigNode r, root.Child("reconnect"));
    TV_RETURN_IF_ERROR(r.CheckKeys({"initial_seconds", "max_seconds", "jitter"}));
    TV_RETURN_IF_ERROR(r.Read("initial_seconds", &c.reconnect_initial_seconds));
    TV_RETURN_IF_ERROR(r.Read("max_seconds", &c.reconnect_max_seconds));
    TV_RETURN_IF_ERROR(r.Read("jitter", &c.reconnect_jitter));
  }
  TV_RETURN_IF_ERROR(root.Read("result_chunk_bytes", &c.result_chunk_bytes));
  TV_RETURN_IF_ERROR(root.Read("progress_interval_seconds", &c.progress_interval_seconds));
  TV_RETURN_IF_ERROR(root.Read("log_level", &c.log_level));
  return c;
}

bool Fp8Weights(const ModelEntry& m) {
  return m.weights == "fp8" || (m.weights.empty() && m.variant == "turbo-fp8");
}

absl::StatusOr<ModelEntry> ParseModelFlag(const std::string& value, const std::string& flag) {
  size_t colon = value.find(':');
  size_t eq = value.find('=');
  if (colon == std::string::npos || eq == std::string::npos || eq < colon || colon == 0 ||
      eq == colon + 1 || eq + 1 == value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", value, "' is not MODEL_ID:VARIANT=PATH"));
  }
  return ModelEntry{value.substr(0, colon), value.substr(colon + 1, eq - colon - 1),
                    value.substr(eq + 1), /*preload=*/flag != "--model-lazy"};
}

absl::Status ApplyWorkerFlags(const std::vector<std::string>& args, WorkerConfig* c) {
  bool models_replaced = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string key = args[i], value;
    if (key.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", key, "'"));
    }
    key = key.substr(2);
    size_t eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", key, ": missing value"));
    }
    auto to_int = [&](int* out) -> absl::Status {
      if (!absl::SimpleAtoi(value, out)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", key, ": '", value, "' is not an integer"));
      }
      return absl::OkStatus();
    };
    auto to_double = [&](double* out) -> absl::Status {
      if (!absl::SimpleAtod(value, out)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", key, ": '", value, "' is not a number"));
      }
      return absl::OkStatus();
    };
    if (key == "config") {
      continue;  // read by the caller before the flags
    } else if (key == "worker-id") {
      c->worker_id = value;
    } else if (key == "node-class") {
      c->node_class = value;
    } else if (key == "scheduler") {
      c->scheduler_address = value;
    } else if (key == "token-file") {
      c->scheduler_token_file = value;
    } else if (key == "scheduler-ca") {
      c->scheduler_ca_file = value;
    } else if (key == "client-cert") {
      c->client_cert_file = value;
    } else if (key == "client-key") {
      c->client_key_file = value;
    } else if (key == "backend") {
      c->backend = value;
    } else if (key == "device") {
      TV_RETURN_IF_ERROR(to_int(&c->device));
    } else if (key == "http-address") {
      c->http_address = value;
    } else if (key == "http-port") {
      TV_RETURN_IF_ERROR(to_int(&c->http_port));
    } else if (key == "grpc-listen") {
      c->grpc_listen = value;
    } else if (key == "tensor-parallel-size") {
      TV_RETURN_IF_ERROR(to_int(&c->tensor_parallel_size));
    } else if (key == "sequence-parallel-size") {
      TV_RETURN_IF_ERROR(to_int(&c->sequence_parallel_size));
    } else if (key == "group-timeout-seconds") {
      TV_RETURN_IF_ERROR(to_double(&c->group_timeout_seconds));
    } else if (key == "group-rank") {
      TV_RETURN_IF_ERROR(to_int(&c->group_rank));
    } else if (key == "group-name") {
      c->group_name = value;
    } else if (key == "heartbeat-seconds") {
      TV_RETURN_IF_ERROR(to_double(&c->heartbeat_seconds));
    } else if (key == "memory-limit-gib") {
      TV_RETURN_IF_ERROR(to_double(&c->memory_limit_gib));
    } else if (key == "price-per-hour") {
      TV_RETURN_IF_ERROR(to_double(&c->price_per_hour));
    } else if (key == "log-level") {
      c->log_level = value;
    } else if (key == "memory-budget-bytes") {
      if (!absl::SimpleAtoi(value, &c->memory_budget_bytes)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", key, ": '", value, "' is not an integer"));
      }
    } else if (key == "model" || key == "model-lazy") {
      TV_ASSIGN_OR_RETURN(ModelEntry m, ParseModelFlag(value, "--" + key));
      if (!models_replaced) c->models.clear();  // flags replace the file's list
      models_replaced = true;
      c->models.push_back(std::move(m));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", key));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateWorkerConfig(const WorkerConfig& c) {
  auto bad = [](const std::string& key, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": ", why));
  };
  if (c.backend != "cpu" && c.backend != "cuda") {
    return bad("backend", absl::StrCat("'", c.backend, "' is not cpu or cuda"));
  }
  if (c.node_class.empty()) return bad("node_class", "empty");
  if (c.scheduler_address.empty()) return bad("scheduler", "empty");
  if (c.models.empty()) return bad("models", "no model to serve (list one, or pass --model)");
  for (size_t i = 0; i < c.models.size(); ++i) {
    const ModelEntry& m = c.models[i];
    std::string key = absl::StrCat("models[", i, "]");
    if (m.model_id.empty()) return bad(key + ".model_id", "empty");
    if (m.variant.empty()) return bad(key + ".variant", "empty");
    if (m.path.empty()) return bad(key + ".path", "empty");
    if (!m.weights.empty() && m.weights != "checkpoint" && m.weights != "fp8") {
      return bad(key + ".weights", absl::StrCat("'", m.weights, "' is not checkpoint or fp8"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (c.models[j].model_id == m.model_id && c.models[j].variant == m.variant) {
        return bad(key, absl::StrCat(m.model_id, ":", m.variant, " is listed twice"));
      }
    }
  }
  if (c.memory_budget_bytes < 0) return bad("memory_budget_bytes", "negative");
  if (!(c.memory_limit_gib >= 0) || c.memory_limit_gib > 1e6) {
    return bad("memory_limit_gib", "negative, not a number or above 1e6");
  }
  if (!(c.price_per_hour >= 0)) return bad("price_per_hour", "negative or not a number");
  if (c.http_port < 0 || c.http_port > 65535) return bad("http.port", "out of range");
  if (c.device < 0) return bad("device", "negative");
  if (c.gpu_count < 1) return bad("gpu_count", "must be >= 1");
  TV_RETURN_IF_ERROR(engine::comm::ValidateLayout(
      engine::comm::ParallelLayout{c.tensor_parallel_size, c.sequence_parallel_size}));
  if (c.gpu_count != 1 && c.gpu_count != c.group_size()) {
    return bad("gpu_count", absl::StrCat(c.gpu_count, " != tensor_parallel_size ",
                                         c.tensor_parallel_size, " x sequence_parallel_size ",
                                         c.sequence_parallel_size, " (one process per GPU)"));
  }
  if (c.group_timeout_seconds <= 0) return bad("group_timeout_seconds", "must be > 0");
  if (c.group_rank < 0 || c.group_rank >= c.group_size()) {
    return bad("--group-rank", absl::StrCat(c.group_rank, " outside the group of ", c.group_size()));
  }
  if (c.group_rank > 0 && c.group_name.empty()) {
    return bad("--group-name", "required with --group-rank (set by the group's rank 0)");
  }
  if (c.heartbeat_seconds <= 0) return bad("heartbeat_seconds", "must be > 0");
  if (c.register_timeout_seconds <= 0) return bad("register_timeout_seconds", "must be > 0");
  if (c.reconnect_initial_seconds <= 0 || c.reconnect_max_seconds < c.reconnect_initial_seconds) {
    return bad("reconnect", "need 0 < initial_seconds <= max_seconds");
  }
  if (c.reconnect_jitter < 0 || c.reconnect_jitter >= 1)
    return bad("reconnect.jitter", "not in [0, 1)");
  if (c.result_chunk_bytes < common::kMinResultChunkBytes ||
      c.result_chunk_bytes > common::kResultChunkBytes) {
    return bad("result_chunk_bytes",
               absl::StrCat(c.result_chunk_bytes, " not in [", common::kMinResultChunkBytes, ", ",
                            common::kResultChunkBytes, "] (the scheduler's chunk limit)"));
  }
  if (c.progress_interval_seconds < 0) return bad("progress_interval_seconds", "negative");
  return absl::OkStatus();
}

const char* WorkerUsage() {
  return "usage: turbovid-worker [--config FILE] [--worker-id ID] [--node-class CLASS]\n"
         "  [--scheduler HOST:PORT] [--backend cpu|cuda] [--device N] [--http-address ADDR]\n"
         "  [--http-port N] [--grpc-listen HOST:PORT] [--heartbeat-seconds S] [--log-level LEVEL]\n"
         "  [--memory-budget-bytes N]   (weights held at once; 0 = the device's memory)\n"
         "  [--memory-limit-gib G]      (device memory budget per GPU: weights, activations,\n"
         "                               workspaces; jobs that cannot fit are refused; 0 = none)\n"
         "  [--price-per-hour X]        (cost of an hour of this node, for cost metrics)\n"
         "  [--tensor-parallel-size N] [--sequence-parallel-size N]   (a group of N x M ranks,\n"
         "   one process per GPU from --device on; this process is rank 0 and starts the rest)\n"
         "  [--group-timeout-seconds S]\n"
         "  [--token-file FILE]         (worker token; else env TURBOVID_WORKER_TOKEN)\n"
         "  [--scheduler-ca FILE] [--client-cert FILE --client-key FILE]   (TLS, mutual TLS)\n"
         "  [--model MODEL_ID:VARIANT=PATH]...       (loaded at startup)\n"
         "  [--model-lazy MODEL_ID:VARIANT=PATH]...  (listed, loaded by its first task)\n"
         "  --model and --model-lazy together replace the config's model list.\n";
}

}  // namespace turbovid::worker
