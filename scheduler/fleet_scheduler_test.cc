// Fleet economics in the real scheduler (SQLite store, artifact directory, in-memory worker
// links): deadline and priority-class admission, cost- and deadline-aware dispatch between an
// RTX 5090 and an H100 worker, the service-time model learning from finished jobs, GetFleet and
// the fleet metrics. The tiny model's prior: 10 s on the 5090 at 0.36/h, 2 s on the H100 at
// 3.60/h; deadlines are minutes apart from those, so the wall clock's progress during the test
// cannot change a decision.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"

namespace turbovid::scheduler {
namespace {

namespace v1 = ::turbovid::v1;
using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

constexpr char kServiceTimes[] = R"(
node_classes:
  h100: {price_per_hour: 3.6}
  rtx5090: {price_per_hour: 0.36}
priors:
  - {node_class: h100, model: tiny-t2v, variant: turbo, width_pixels: 64, height_pixels: 64,
     frames: 5, step_seconds: 0.5, fixed_seconds: 1.0, basis: measured}
  - {node_class: rtx5090, model: tiny-t2v, variant: turbo, width_pixels: 64, height_pixels: 64,
     frames: 5, step_seconds: 2.5, fixed_seconds: 5.0, basis: estimate}
)";

class Link : public server::WorkerLink {
 public:
  void Send(const v1::SchedulerMessage& message) override {
    if (message.has_assign()) assigns.push_back(message.assign());
  }
  void Close(const absl::Status&) override {}
  std::vector<v1::AssignTask> assigns;
};

struct Worker {
  Link link;
  std::unique_ptr<server::WorkerSession> session;
};

class FleetSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/tv_fleet_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.db_path = dir_ + "/jobs.db";
    config_.artifact_dir = dir_ + "/artifacts";
    config_.check_worker_results = false;  // placeholder bytes; the check has its own tests
    config_.placement.service_times_file = dir_ + "/service-times.yaml";
    Open(kServiceTimes);
  }
  // (Re)starts the scheduler over the same store with `service_times` as its table.
  void Open(const std::string& service_times) {
    scheduler_.reset();
    std::ofstream(config_.placement.service_times_file) << service_times;
    registry_ = std::make_unique<common::metrics::Registry>();
    metrics_ = std::make_unique<SchedulerMetrics>(*registry_);
    auto catalog = ModelCatalog::LoadFile(TV_MODELS_YAML);
    ASSERT_THAT(catalog, IsOk());
    auto store = JobStore::Open(config_.db_path, false);
    ASSERT_THAT(store, IsOk());
    auto artifacts = LocalArtifactStore::Create(config_.artifact_dir);
    ASSERT_THAT(artifacts, IsOk());
    auto scheduler = Scheduler::Create(config_, std::move(*catalog), std::move(*store),
                                       std::move(*artifacts), metrics_.get());
    ASSERT_THAT(scheduler, IsOk());
    scheduler_ = std::move(*scheduler);
  }
  void TearDown() override {
    scheduler_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Worker> Connect(const std::string& id, const std::string& node_class,
                                  int gpus = 1) {
    auto worker = std::make_unique<Worker>();
    worker->session = scheduler_->OpenSession(&worker->link, "test", {});
    v1::WorkerMessage m;
    m.mutable_register_()->set_worker_id(id);
    m.mutable_register_()->set_node_class(node_class);
    m.mutable_register_()->set_gpu_count(gpus);
    m.mutable_register_()->set_tensor_parallel_size(gpus);
    auto* model = m.mutable_register_()->add_models();
    model->set_model_id("tiny-t2v");
    model->set_variant("turbo");
    model->set_loaded(true);
    EXPECT_THAT(worker->session->OnMessage(m), IsOk());
    return worker;
  }
  static v1::SubmitVideoRequest Request(double deadline_seconds, const std::string& cls = "") {
    v1::SubmitVideoRequest r;
    r.set_model_id("tiny-t2v");
    r.set_prompt("a red ball");
    r.set_deadline_seconds(deadline_seconds);
    r.set_priority_class(cls);
    return r;
  }
  // Two denoising steps of 0.25 s, an upload, success.
  static void Finish(Worker& w, const v1::AssignTask& task) {
    for (int step = 1; step <= 2; ++step) {
      v1::WorkerMessage m;
      m.mutable_progress()->set_task_id(task.task_id());
      m.mutable_progress()->set_attempt(task.attempt());
      m.mutable_progress()->set_stage(v1::STAGE_DENOISING);
      m.mutable_progress()->set_step(step);
      m.mutable_progress()->set_num_steps(2);
      m.mutable_progress()->set_step_seconds(0.25);
      ASSERT_THAT(w.session->OnMessage(m), IsOk());
    }
    v1::WorkerMessage chunk;
    chunk.mutable_chunk()->set_task_id(task.task_id());
    chunk.mutable_chunk()->set_attempt(task.attempt());
    chunk.mutable_chunk()->set_data("mp4");
    ASSERT_THAT(w.session->OnMessage(chunk), IsOk());
    v1::WorkerMessage result;
    result.mutable_result()->set_task_id(task.task_id());
    result.mutable_result()->set_attempt(task.attempt());
    result.mutable_result()->set_ok(true);
    result.mutable_result()->set_video_bytes(3);
    ASSERT_THAT(w.session->OnMessage(result), IsOk());
  }
  double Counter(const std::string& node_class, const std::string& reason) {
    return metrics_->placement_decisions.WithLabels({node_class, reason}).Value();
  }

  std::string dir_;
  SchedulerConfig config_;
  std::unique_ptr<common::metrics::Registry> registry_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(FleetSchedulerTest, DeadlineAndPriorityClassAdmission) {
  EXPECT_THAT(scheduler_->SubmitVideo(Request(-5)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(scheduler_->SubmitVideo(Request(1e9)), StatusIs(absl::StatusCode::kInvalidArgument));
  v1::SubmitVideoRequest both = Request(60);
  both.set_deadline_unix_seconds(4e9);
  EXPECT_THAT(scheduler_->SubmitVideo(both), StatusIs(absl::StatusCode::kInvalidArgument));
  v1::SubmitVideoRequest past = Request(0);
  past.set_deadline_unix_seconds(1e9);  // 2001
  EXPECT_THAT(scheduler_->SubmitVideo(past), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(scheduler_->SubmitVideo(Request(0, "urgent")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(scheduler_->ListJobs(v1::ListJobsRequest())->jobs_size(), 0);
  // interactive: priority 100 and a deadline 60 s after the submit; the request's own priority
  // and deadline win over the class's.
  auto interactive = scheduler_->SubmitVideo(Request(0, "interactive"));
  ASSERT_THAT(interactive, IsOk());
  const v1::SubmitVideoRequest& accepted = interactive->request();
  EXPECT_EQ(accepted.priority(), 100);
  EXPECT_NEAR(accepted.deadline_unix_seconds() - interactive->created_unix_seconds(), 60, 1e-6);
  EXPECT_EQ(accepted.deadline_seconds(), 0);
  v1::SubmitVideoRequest own = Request(30, "interactive");
  own.set_priority(7);
  auto mine = scheduler_->SubmitVideo(own);
  ASSERT_THAT(mine, IsOk());
  EXPECT_EQ(mine->request().priority(), 7);
  EXPECT_NEAR(mine->request().deadline_unix_seconds() - mine->created_unix_seconds(), 30, 1e-6);
  auto batch = scheduler_->SubmitVideo(Request(0, "batch"));
  EXPECT_EQ(batch->request().priority(), -100);
  EXPECT_EQ(batch->request().deadline_unix_seconds(), 0);
}

TEST_F(FleetSchedulerTest, CheapestWorkerInTimeWaitsForTheCheapOneWhileItCan) {
  auto cheap = Connect("w-5090", "rtx5090");
  auto fast = Connect("w-h100", "h100");
  // 600 s of slack: the 5090 (10 s, 0.001) beats the H100 (2 s, 0.002).
  auto a = scheduler_->SubmitVideo(Request(600));
  ASSERT_EQ(cheap->link.assigns.size(), 1u);
  EXPECT_EQ(cheap->link.assigns[0].task_id(), a->job_id());
  EXPECT_EQ(Counter("rtx5090", "cheapest_meeting_deadline"), 1);
  // 5 s of slack: only the H100 is in time.
  auto b = scheduler_->SubmitVideo(Request(5));
  ASSERT_EQ(fast->link.assigns.size(), 1u);
  EXPECT_EQ(fast->link.assigns[0].task_id(), b->job_id());
  // Both busy; 600 s of slack: wait for the 5090 (free in ~10 s, done in ~20 s).
  auto c = scheduler_->SubmitVideo(Request(600));
  EXPECT_EQ(scheduler_->GetJob(c->job_id())->state(), v1::JOB_STATE_QUEUED);
  // The H100 frees first (b is cancelled, so its prior stands): c keeps waiting for the
  // cheaper 5090 rather than take the idle H100.
  ASSERT_THAT(scheduler_->CancelJob(b->job_id()), IsOk());
  v1::WorkerMessage cancelled;
  cancelled.mutable_result()->set_task_id(b->job_id());
  cancelled.mutable_result()->set_attempt(1);
  cancelled.mutable_result()->set_cancelled(true);
  ASSERT_THAT(fast->session->OnMessage(cancelled), IsOk());
  EXPECT_EQ(scheduler_->GetJob(b->job_id())->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(fast->link.assigns.size(), 1u);
  EXPECT_EQ(scheduler_->GetJob(c->job_id())->state(), v1::JOB_STATE_QUEUED);
  // A job without a deadline takes the idle H100 (the cheapest idle worker); c still waits.
  auto d = scheduler_->SubmitVideo(Request(0));
  ASSERT_EQ(fast->link.assigns.size(), 2u);
  EXPECT_EQ(fast->link.assigns[1].task_id(), d->job_id());
  EXPECT_EQ(Counter("h100", "cheapest_idle"), 1);
  EXPECT_EQ(scheduler_->GetJob(c->job_id())->state(), v1::JOB_STATE_QUEUED);
  Finish(*cheap, cheap->link.assigns[0]);
  ASSERT_EQ(cheap->link.assigns.size(), 2u);
  EXPECT_EQ(cheap->link.assigns[1].task_id(), c->job_id());
  EXPECT_EQ(Counter("rtx5090", "cheapest_meeting_deadline"), 2);
}

TEST_F(FleetSchedulerTest, AWorkerGroupCostsAllItsGpus) {
  // Prices are per GPU. The 5090 at 1.08/h: 10 s cost 0.003. One H100 at 3.60/h: 2 s cost 0.002;
  // a tensor-parallel pair (2 s by its own prior) costs 0.004.
  std::string table = kServiceTimes;
  table.replace(table.find("0.36"), 4, "1.08");
  table += R"(  - {node_class: h100, layout: tp2, model: tiny-t2v, variant: turbo, width_pixels: 64,
     height_pixels: 64, frames: 5, step_seconds: 0.5, fixed_seconds: 1.0, basis: estimate}
)";
  Open(table);
  auto cheap = Connect("w-5090", "rtx5090");
  auto pair = Connect("w-h100x2", "h100", 2);
  ASSERT_THAT(scheduler_->SubmitVideo(Request(600)), IsOk());
  EXPECT_EQ(cheap->link.assigns.size(), 1u);
  EXPECT_TRUE(pair->link.assigns.empty());
  auto single = Connect("w-h100", "h100");
  // The 5090 is busy: one H100 (0.002) beats the pair (0.004) and waiting for the 5090 (0.003).
  ASSERT_THAT(scheduler_->SubmitVideo(Request(600)), IsOk());
  EXPECT_EQ(single->link.assigns.size(), 1u);
  EXPECT_TRUE(pair->link.assigns.empty());
}

TEST_F(FleetSchedulerTest, NoWorkerInTimeTakesTheEarliestCompletion) {
  auto cheap = Connect("w-5090", "rtx5090");
  auto fast = Connect("w-h100", "h100");
  auto a = scheduler_->SubmitVideo(Request(1));  // 1 s: nobody makes it, the H100 is earliest
  ASSERT_EQ(fast->link.assigns.size(), 1u);
  EXPECT_EQ(fast->link.assigns[0].task_id(), a->job_id());
  EXPECT_EQ(Counter("h100", "earliest_completion"), 1);
  EXPECT_TRUE(cheap->link.assigns.empty());
}

TEST_F(FleetSchedulerTest, FinishedJobsTeachTheModelAndShowInGetFleetAndMetrics) {
  auto fast = Connect("w-h100", "h100");
  auto cheap = Connect("w-5090", "rtx5090");
  ASSERT_THAT(scheduler_->SubmitVideo(Request(5)), IsOk());
  ASSERT_EQ(fast->link.assigns.size(), 1u);
  Finish(*fast, fast->link.assigns[0]);
  auto fleet = scheduler_->GetFleet();
  ASSERT_THAT(fleet, IsOk());
  std::map<std::string, v1::NodeClassStatus> classes;
  for (const auto& c : fleet->node_classes()) classes[c.node_class()] = c;
  ASSERT_EQ(classes.count("h100"), 1u);
  EXPECT_DOUBLE_EQ(classes["h100"].price_per_hour(), 3.6);
  EXPECT_EQ(classes["h100"].workers(), 1);
  EXPECT_EQ(classes["h100"].idle_workers(), 1);
  EXPECT_EQ(classes["rtx5090"].workers(), 1);
  EXPECT_GT(classes["h100"].offered_load(), 0);  // the job was routed there at submit
  EXPECT_EQ(classes["cpu"].workers(), 0);
  bool measured = false, prior = false;
  for (const v1::ServiceTimeEstimate& e : fleet->service_times()) {
    if (e.model_id() != "tiny-t2v" || e.variant() != "turbo" || e.num_frames() != 5) continue;
    if (e.node_class() == "h100" && e.num_steps() == 2) {
      measured = true;
      EXPECT_EQ(e.source(), "measured");
      EXPECT_EQ(e.samples(), 1);
      EXPECT_DOUBLE_EQ(e.prior_seconds(), 2.0);
      EXPECT_GT(e.seconds(), 0);
      EXPECT_LT(e.seconds(), 60);
    }
    if (e.node_class() == "rtx5090" && e.num_steps() == 2) {
      prior = true;
      EXPECT_EQ(e.source(), "prior");
      EXPECT_DOUBLE_EQ(e.seconds(), 10);
      EXPECT_NEAR(e.cost(), 0.001, 1e-12);
    }
  }
  EXPECT_TRUE(measured);
  EXPECT_TRUE(prior);
  scheduler_->CollectMetrics();
  const std::string text = registry_->Render();
  EXPECT_THAT(text,
              ::testing::HasSubstr("turbovid_node_class_price_per_hour{node_class=\"h100\"} 3.6"));
  EXPECT_THAT(text, ::testing::HasSubstr("turbovid_deadline_jobs_total{model=\"tiny-t2v\","
                                         "result=\"met\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr("turbovid_job_service_seconds_count{model=\"tiny-t2v\","
                                         "variant=\"turbo\",node_class=\"h100\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr("turbovid_service_time_estimate_seconds{model=\"tiny-"
                                         "t2v\",variant=\"turbo\",node_class=\"rtx5090\"} 10"));
  EXPECT_THAT(text, ::testing::HasSubstr("turbovid_placement_decisions_total{node_class=\"h100\","
                                         "reason=\"cheapest_meeting_deadline\"} 1"));
}

TEST_F(FleetSchedulerTest, QueuedWorkDrivesTheDesiredWorkersPerClass) {
  // No workers. Two jobs due in 600 s go to the 5090 class (10 s each, cheaper); three due in
  // 4 s fit only the H100 (2 s each) and are more than one H100 can do in time: 6 s of work
  // within 4 s -> 1.5, plus the arrival term (a few hundredths) -> 2 H100s, 1 RTX 5090.
  for (int i = 0; i < 2; ++i) ASSERT_THAT(scheduler_->SubmitVideo(Request(600)), IsOk());
  for (int i = 0; i < 3; ++i) ASSERT_THAT(scheduler_->SubmitVideo(Request(4)), IsOk());
  scheduler_->CollectMetrics();
  const std::string text = registry_->Render();
  EXPECT_THAT(text, ::testing::HasSubstr("turbovid_pool_desired_workers{node_class=\"h100\"} 2"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("turbovid_pool_desired_workers{node_class=\"rtx5090\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr("turbovid_pool_desired_workers{node_class=\"cpu\"} 0"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("turbovid_pool_queued_work_seconds{node_class=\"h100\"} 6"));
  auto fleet = scheduler_->GetFleet();
  ASSERT_THAT(fleet, IsOk());
  for (const auto& c : fleet->node_classes()) {
    if (c.node_class() == "rtx5090") {
      EXPECT_EQ(c.desired_workers(), 1);
      EXPECT_EQ(c.queued_jobs(), 2);
      EXPECT_DOUBLE_EQ(c.queued_seconds(), 20);
    }
  }
}

TEST_F(FleetSchedulerTest, ServiceTimesFileMustNameCatalogClasses) {
  std::ofstream(config_.placement.service_times_file)
      << "node_classes: {a100: {price_per_hour: 1}}";
  auto store = JobStore::Open(dir_ + "/other.db", false);
  ASSERT_THAT(store, IsOk());
  auto artifacts = LocalArtifactStore::Create(dir_ + "/other-artifacts");
  ASSERT_THAT(artifacts, IsOk());
  auto scheduler = Scheduler::Create(config_, *ModelCatalog::LoadFile(TV_MODELS_YAML),
                                     std::move(*store), std::move(*artifacts), metrics_.get());
  EXPECT_THAT(scheduler, StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace turbovid::scheduler
