// ModelSet over a real tiny checkpoint on the CPU backend: lazy loading, LRU eviction under the
// memory budget, leased models kept, clear failures; and RunTask reporting the load as a stage.
#include "worker/model_set.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status_matchers.h"
#include "engine/backends/backends.h"
#include "engine/pipeline/model_dir.h"
#include "engine/testing/tiny_checkpoint.h"
#include "engine/video/video.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/task_runner.h"

namespace turbovid::worker {
namespace {

using ::testing::HasSubstr;
using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

class ModelSetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One folder per process: ctest runs the tests of this suite as parallel processes.
    dir_ = new std::string(::testing::TempDir() + "/tv_model_set_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(*dir_);
    ASSERT_THAT(engine::MakeTinyCheckpoint("t2v", *dir_), IsOk());
    absl::StatusOr<int64_t> bytes = engine::CheckpointBytes(*dir_);
    ASSERT_THAT(bytes, IsOk());
    model_bytes_ = *bytes;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    auto backend = engine::MakeBackend("cpu");
    ASSERT_THAT(backend, IsOk());
    backend_ = std::move(*backend);
  }
  // Models a, b, c: the same tiny checkpoint under three ids; only `preloaded` load at startup.
  std::unique_ptr<ModelSet> Make(int64_t budget, const std::vector<std::string>& preloaded) {
    std::vector<ModelEntry> entries;
    for (const char* id : {"a", "b", "c"}) {
      const bool preload = std::find(preloaded.begin(), preloaded.end(), id) != preloaded.end();
      entries.push_back(ModelEntry{id, "turbo", *dir_, preload});
    }
    return std::make_unique<ModelSet>(std::move(entries), budget, ModelSet::EngineLoader(*backend_),
                                      metrics_);
  }
  static std::map<std::string, bool> Loaded(const ModelSet& set) {
    std::map<std::string, bool> out;
    for (const v1::ModelVariant& m : set.Describe()) out[m.model_id()] = m.loaded();
    return out;
  }

  static std::string* dir_;
  static int64_t model_bytes_;
  std::unique_ptr<engine::Backend> backend_;
  common::metrics::Registry registry_;
  WorkerMetrics metrics_{registry_};
};
std::string* ModelSetTest::dir_ = nullptr;
int64_t ModelSetTest::model_bytes_ = 0;

// A turbo-fp8 entry loads the same bf16 checkpoint with its DiT block linears in e4m3, and is
// sized (against the budget) at 1 byte a block weight plus the row scales.
TEST_F(ModelSetTest, Fp8VariantLoadsTheBf16CheckpointQuantised) {
  std::vector<ModelEntry> entries = {{"a", "turbo-fp8", *dir_, false}, {"a", "turbo", *dir_, false}};
  ModelSet set(std::move(entries), 0, ModelSet::EngineLoader(*backend_), metrics_);
  absl::StatusOr<ModelLease> fp8 = set.Acquire("a", "turbo-fp8");
  ASSERT_THAT(fp8, IsOk());
  const int64_t fp8_bytes = set.held_bytes();
  absl::StatusOr<ModelLease> bf16 = set.Acquire("a", "turbo");
  ASSERT_THAT(bf16, IsOk());
  EXPECT_EQ(fp8_bytes, *engine::CheckpointBytes(*dir_, /*fp8_blocks=*/true));
  EXPECT_LT(fp8_bytes, model_bytes_);
  EXPECT_EQ(set.held_bytes(), fp8_bytes + model_bytes_);
}

TEST_F(ModelSetTest, LazyModelsLoadOnFirstUseAndTheLeastRecentlyUsedIsEvicted) {
  auto set = Make(2 * model_bytes_ + model_bytes_ / 2, {"a"});  // room for two of the three
  ASSERT_THAT(set->LoadPreloaded(), IsOk());
  EXPECT_EQ(Loaded(*set), (std::map<std::string, bool>{{"a", true}, {"b", false}, {"c", false}}));
  int loads = 0;
  auto count = [&] { ++loads; };
  const uint64_t before = set->generation();
  ASSERT_THAT(set->Acquire("b", "turbo", count), IsOk());  // lease released at once
  EXPECT_EQ(loads, 1);
  EXPECT_NE(set->generation(), before);
  ASSERT_THAT(set->Acquire("a", "turbo", count), IsOk());  // warm: a is now the most recent
  ASSERT_THAT(set->Acquire("b", "turbo", count), IsOk());  // warm: no second load
  ASSERT_THAT(set->Acquire("a", "turbo", count), IsOk());
  EXPECT_EQ(loads, 1);
  ASSERT_THAT(set->Acquire("c", "turbo", count), IsOk());  // evicts b, used before a
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(Loaded(*set), (std::map<std::string, bool>{{"a", true}, {"b", false}, {"c", true}}));
  EXPECT_EQ(set->held_bytes(), 2 * model_bytes_);
}

TEST_F(ModelSetTest, AModelInUseIsNeverEvicted) {
  auto set = Make(2 * model_bytes_ + model_bytes_ / 2, {"a"});
  ASSERT_THAT(set->LoadPreloaded(), IsOk());
  absl::StatusOr<ModelLease> a = set->Acquire("a", "turbo");  // held: the oldest, but in use
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(set->Acquire("b", "turbo"), IsOk());
  absl::StatusOr<ModelLease> c = set->Acquire("c", "turbo");  // evicts b, not a
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(Loaded(*set), (std::map<std::string, bool>{{"a", true}, {"b", false}, {"c", true}}));
  // a and c both in use: b does not fit beside them.
  EXPECT_THAT(set->Acquire("b", "turbo"), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(Loaded(*set), (std::map<std::string, bool>{{"a", true}, {"b", false}, {"c", true}}));
  EXPECT_NE(a->pipeline(), nullptr);
  a->Release();
  ASSERT_THAT(set->Acquire("b", "turbo"), IsOk());  // a is idle now: it goes
  EXPECT_EQ(Loaded(*set), (std::map<std::string, bool>{{"a", false}, {"b", true}, {"c", true}}));
}

TEST_F(ModelSetTest, TooBigForTheBudgetFailsClearly) {
  auto lazy = Make(model_bytes_ / 2, {});
  ASSERT_THAT(lazy->LoadPreloaded(), IsOk());
  absl::StatusOr<ModelLease> lease = lazy->Acquire("a", "turbo");
  EXPECT_THAT(lease, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(lease.status().message(), HasSubstr("a:turbo"));
  EXPECT_FALSE(Loaded(*lazy)["a"]);
  // Preloaded models that do not fit together: a startup error naming each with its size.
  auto preloaded = Make(2 * model_bytes_ + model_bytes_ / 2, {"a", "b", "c"});
  absl::Status s = preloaded->LoadPreloaded();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(s.message(), HasSubstr("c:turbo " + std::to_string(model_bytes_) + " bytes"));
}

TEST_F(ModelSetTest, LoadFailureNamesModelAndPathAndLeavesTheRestServing) {
  std::vector<ModelEntry> entries = {{"good", "turbo", *dir_, false},
                                     {"broken", "turbo", *dir_ + "/missing", false}};
  ModelSet set(std::move(entries), 0, ModelSet::EngineLoader(*backend_), metrics_);
  absl::StatusOr<ModelLease> broken = set.Acquire("broken", "turbo");
  EXPECT_THAT(broken, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(broken.status().message(), HasSubstr("broken:turbo from " + *dir_ + "/missing"));
  EXPECT_THAT(set.Acquire("good", "turbo"), IsOk());
  EXPECT_THAT(set.Acquire("other", "turbo"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// The first task of a lazy model reports LOADING_MODEL before the engine's stages; the second
// finds it warm and starts with the engine's first stage.
TEST_F(ModelSetTest, RunTaskReportsTheLoadOnlyWhenCold) {
  auto set = Make(0, {});
  v1::AssignTask task;
  task.set_task_id("t1");
  v1::ResolvedJob* job = task.mutable_job();
  job->set_model_id("b");
  job->set_variant("turbo");
  job->set_sampler(v1::SAMPLER_RCM);
  job->set_attention(v1::ATTENTION_MODE_DENSE);
  job->set_num_steps(1);
  job->set_num_frames(1);
  job->set_width_pixels(32);
  job->set_height_pixels(32);
  job->set_prompt("a red ball");
  for (bool cold : {true, false}) {
    std::vector<v1::Stage> stages;
    ProgressSink sink = [&](const v1::TaskProgress& p) {
      if (stages.empty() || stages.back() != p.stage()) stages.push_back(p.stage());
    };
    TaskOutcome outcome = RunTask(
        task, *set, sink, [] { return false; },
        [](const std::string&, bool) { return absl::OkStatus(); }, 0, metrics_, "cpu");
    ASSERT_THAT(outcome.status, IsOk());
    ASSERT_FALSE(stages.empty());
    EXPECT_EQ(stages.front(), cold ? v1::STAGE_LOADING_MODEL : v1::STAGE_ENCODING_TEXT);
    EXPECT_EQ(stages.back(), v1::STAGE_UPLOADING);
    // The encoder that wrote the MP4 is reported (TaskResult.mp4_encoder): libx264 here, where
    // no NVENC opens (and TV_MP4_ENCODER is not set by the tests).
    EXPECT_EQ(outcome.mp4_encoder, engine::video::ProbeNvenc().available ? "nvenc" : "x264");
  }
  EXPECT_TRUE(Loaded(*set)["b"]);
}

TEST_F(ModelSetTest, RunTaskUnderAMemoryBudgetFitsOrIsRefusedAtAdmission) {
  auto set = Make(0, {"a"});
  ASSERT_THAT(set->LoadPreloaded(), IsOk());
  v1::AssignTask task;
  task.set_task_id("t1");
  v1::ResolvedJob* job = task.mutable_job();
  job->set_model_id("a");
  job->set_variant("turbo");
  job->set_sampler(v1::SAMPLER_RCM);
  job->set_attention(v1::ATTENTION_MODE_DENSE);
  job->set_num_steps(1);
  job->set_num_frames(5);
  job->set_width_pixels(32);
  job->set_height_pixels(32);
  job->set_prompt("a red ball");
  // The budget: exactly what the small job's plan needs.
  int64_t need = 0;
  {
    auto lease = set->Acquire("a", "turbo", nullptr);
    ASSERT_THAT(lease, IsOk());
    auto request = ToGenerateRequest(*job, "");
    ASSERT_THAT(request, IsOk());
    auto plan = lease->pipeline()->PlanMemory(*request);
    ASSERT_THAT(plan, IsOk());
    need = plan->peak;
  }
  backend_->SetMemoryLimit(need);
  auto run = [&] {
    return RunTask(
        task, *set, [](const v1::TaskProgress&) {}, [] { return false; },
        [](const std::string&, bool) { return absl::OkStatus(); }, 0, metrics_, "cpu");
  };
  TaskOutcome fits = run();
  ASSERT_THAT(fits.status, IsOk());
  EXPECT_GT(fits.peak_bytes, 0);
  EXPECT_LE(fits.peak_bytes, need);
  // A larger frame does not fit: refused before the pipeline runs, naming need and budget.
  job->set_width_pixels(256);
  job->set_height_pixels(256);
  TaskOutcome refused = run();
  EXPECT_THAT(refused.status, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(refused.status.message(), HasSubstr("over the memory budget"));
  EXPECT_THAT(refused.status.message(), HasSubstr(std::to_string(need) + " bytes"));
  EXPECT_FALSE(refused.ran_pipeline);
}

}  // namespace
}  // namespace turbovid::worker
