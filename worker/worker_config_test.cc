// Worker config: YAML keys, flag overrides and validation errors that name the key.
#include "worker/worker_config.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace turbovid::worker {
namespace {

std::string WriteTemp(const std::string& text) {
  // One file per test: ctest runs the tests of this binary as parallel processes.
  std::string path = ::testing::TempDir() + "/worker_config_test_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
  std::ofstream(path) << text;
  return path;
}

TEST(WorkerConfigTest, ReadsEveryKey) {
  auto c = LoadWorkerConfig(WriteTemp(R"(
worker_id: w1
node_class: h100
scheduler: sched:50051
backend: cuda
device: 3
gpu_name: H100
memory_bytes: 85899345920
gpu_count: 1
tensor_parallel_size: 1
models:
  - {model_id: wan2.1-t2v-1.3b, variant: turbo, path: /models/t2v}
  - {model_id: wan2.1-t2v-14b, variant: turbo, path: /models/t2v-14b, preload: false}
memory_budget_bytes: 68719476736
http: {address: 127.0.0.1, port: 9200}
heartbeat_seconds: 1.5
register_timeout_seconds: 4
reconnect: {initial_seconds: 0.1, max_seconds: 3, jitter: 0.1}
result_chunk_bytes: 131072
progress_interval_seconds: 0.5
log_level: debug
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->worker_id, "w1");
  EXPECT_EQ(c->node_class, "h100");
  EXPECT_EQ(c->scheduler_address, "sched:50051");
  EXPECT_EQ(c->device, 3);
  EXPECT_EQ(c->memory_bytes, 85899345920);
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].path, "/models/t2v");
  EXPECT_TRUE(c->models[0].preload);
  EXPECT_FALSE(c->models[1].preload);
  EXPECT_EQ(c->memory_budget_bytes, 68719476736);
  EXPECT_EQ(c->http_port, 9200);
  EXPECT_DOUBLE_EQ(c->reconnect_max_seconds, 3);
  EXPECT_EQ(c->result_chunk_bytes, 131072);
  EXPECT_TRUE(ValidateWorkerConfig(*c).ok());
}

TEST(WorkerConfigTest, UnknownKeyIsAnError) {
  auto c = LoadWorkerConfig(WriteTemp("heartbeat: 3\n"));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WorkerConfigTest, FlagsOverrideAndReplaceModels) {
  WorkerConfig c;
  c.models.push_back({"a", "turbo", "/a"});
  ASSERT_TRUE(ApplyWorkerFlags({"--worker-id", "x", "--http-port=0", "--model", "m:turbo=/m",
                                "--model-lazy", "n:original=/n", "--memory-budget-bytes", "4096"},
                               &c)
                  .ok());
  EXPECT_EQ(c.worker_id, "x");
  EXPECT_EQ(c.http_port, 0);
  EXPECT_EQ(c.memory_budget_bytes, 4096);
  EXPECT_EQ(c.memory_limit_gib, 0);
  ASSERT_TRUE(ApplyWorkerFlags({"--memory-limit-gib", "31.5"}, &c).ok());
  EXPECT_EQ(c.memory_limit_gib, 31.5);
  EXPECT_EQ(c.memory_limit_bytes(), int64_t{63} << 29);
  EXPECT_FALSE(ApplyWorkerFlags({"--memory-limit-gib", "lots"}, &c).ok());
  ASSERT_EQ(c.models.size(), 2u);
  EXPECT_EQ(c.models[0].model_id, "m");
  EXPECT_TRUE(c.models[0].preload);
  EXPECT_EQ(c.models[1].variant, "original");
  EXPECT_FALSE(c.models[1].preload);
  EXPECT_EQ(ApplyWorkerFlags({"--bogus", "1"}, &c).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyWorkerFlags({"--device", "x"}, &c).code(), absl::StatusCode::kInvalidArgument);
}

// turbo-fp8: the DiT block linears quantised at load, by the variant's name or the weights key.
TEST(WorkerConfigTest, Fp8WeightsByVariantOrKey) {
  auto c = LoadWorkerConfig(WriteTemp(R"(
models:
  - {model_id: a, variant: turbo-fp8, path: /a}
  - {model_id: a, variant: turbo, path: /a}
  - {model_id: b, variant: fast, path: /b, weights: fp8}
  - {model_id: c, variant: turbo-fp8, path: /c, weights: checkpoint}
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->models.size(), 4u);
  EXPECT_TRUE(Fp8Weights(c->models[0]));
  EXPECT_FALSE(Fp8Weights(c->models[1]));
  EXPECT_TRUE(Fp8Weights(c->models[2]));
  EXPECT_FALSE(Fp8Weights(c->models[3]));
  EXPECT_TRUE(ValidateWorkerConfig(*c).ok());
  c->models[2].weights = "int4";
  const absl::Status bad = ValidateWorkerConfig(*c);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("models[2].weights"), std::string::npos) << bad.message();
  auto flag = ParseModelFlag("m:turbo-fp8=/p");
  ASSERT_TRUE(flag.ok());
  EXPECT_TRUE(Fp8Weights(*flag));
}

TEST(WorkerConfigTest, ModelFlagSyntax) {
  EXPECT_TRUE(ParseModelFlag("m:v=/p").ok());
  EXPECT_FALSE(ParseModelFlag("m=/p").ok());
  EXPECT_FALSE(ParseModelFlag(":v=/p").ok());
  EXPECT_FALSE(ParseModelFlag("m:v=").ok());
  EXPECT_NE(ParseModelFlag("m=/p", "--model-lazy").status().message().find("--model-lazy"),
            std::string::npos);
}

// The checked-in worker configs parse and validate as they are.
TEST(WorkerConfigTest, CheckedInConfigsAreValid) {
  for (const char* name : {"worker-cpu.yaml", "worker-h100.yaml", "worker-rtx5090.yaml"}) {
    auto c = LoadWorkerConfig(std::string(TV_SOURCE_DIR) + "/configs/" + name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status();
    EXPECT_TRUE(ValidateWorkerConfig(*c).ok()) << name << ": " << ValidateWorkerConfig(*c);
  }
}

TEST(WorkerConfigTest, ValidationNamesTheKey) {
  WorkerConfig c;
  EXPECT_EQ(ValidateWorkerConfig(c).code(), absl::StatusCode::kInvalidArgument);  // no models
  c.models.push_back({"m", "turbo", "/m"});
  EXPECT_TRUE(ValidateWorkerConfig(c).ok());
  c.backend = "tpu";
  EXPECT_NE(ValidateWorkerConfig(c).message().find("backend"), std::string::npos);
  c.backend = "cpu";
  c.models.push_back({"m", "turbo", "/m2"});
  EXPECT_NE(ValidateWorkerConfig(c).message().find("models[1]"), std::string::npos);
  c.models.pop_back();
  c.memory_budget_bytes = -1;
  EXPECT_NE(ValidateWorkerConfig(c).message().find("memory_budget_bytes"), std::string::npos);
  c.memory_budget_bytes = 0;
  c.memory_limit_gib = -2;
  EXPECT_NE(ValidateWorkerConfig(c).message().find("memory_limit_gib"), std::string::npos);
  c.memory_limit_gib = 0;
  ASSERT_TRUE(ApplyWorkerFlags({"--price-per-hour", "2.5"}, &c).ok());
  EXPECT_EQ(c.price_per_hour, 2.5);
  EXPECT_TRUE(ValidateWorkerConfig(c).ok());
  EXPECT_NE(ApplyWorkerFlags({"--price-per-hour", "cheap"}, &c).message().find("price-per-hour"),
            std::string::npos);
  c.price_per_hour = -1;
  EXPECT_NE(ValidateWorkerConfig(c).message().find("price_per_hour"), std::string::npos);
}

// A worker group's layout: keys and flags, and the checks that name them.
TEST(WorkerConfigTest, GroupLayout) {
  auto c = LoadWorkerConfig(WriteTemp(R"(
tensor_parallel_size: 2
sequence_parallel_size: 4
group_timeout_seconds: 30
split_vae_decode: false
models: [{model_id: m, variant: turbo, path: /m}]
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->group_size(), 8);
  EXPECT_EQ(c->group_timeout_seconds, 30);
  EXPECT_FALSE(c->split_vae_decode);
  EXPECT_TRUE(WorkerConfig{}.split_vae_decode);  // on by default
  EXPECT_TRUE(ValidateWorkerConfig(*c).ok());  // gpu_count 1: derived
  c->gpu_count = 4;
  EXPECT_NE(ValidateWorkerConfig(*c).message().find("gpu_count"), std::string::npos);
  c->gpu_count = 8;
  EXPECT_TRUE(ValidateWorkerConfig(*c).ok());
  c->sequence_parallel_size = 8;  // 16 ranks: more than a node
  EXPECT_NE(ValidateWorkerConfig(*c).message().find("sequence_parallel_size"), std::string::npos);
  WorkerConfig f = *c;
  ASSERT_TRUE(ApplyWorkerFlags({"--tensor-parallel-size", "1", "--sequence-parallel-size", "2",
                                "--gpu-count-is-not-a-flag", "1"},
                               &f)
                  .code() == absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(ApplyWorkerFlags({"--tensor-parallel-size", "1", "--sequence-parallel-size", "2",
                                "--group-rank", "1"},
                               &f)
                  .ok());
  f.gpu_count = 1;
  EXPECT_NE(ValidateWorkerConfig(f).message().find("--group-name"), std::string::npos);
  ASSERT_TRUE(ApplyWorkerFlags({"--group-name", "abc"}, &f).ok());
  EXPECT_TRUE(ValidateWorkerConfig(f).ok());
  f.group_rank = 2;  // outside a group of 2
  EXPECT_NE(ValidateWorkerConfig(f).message().find("--group-rank"), std::string::npos);
}

}  // namespace
}  // namespace turbovid::worker
