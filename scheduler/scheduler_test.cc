// Scheduler core over a real SQLite file and a real artifact directory. Workers are driven
// through the WorkerHubBackend interface with an in-memory link standing in for the gRPC stream.
#include "scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/live_video.h"

namespace turbovid::scheduler {
namespace {

namespace v1 = ::turbovid::v1;
using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

// Records what the scheduler sends to one worker.
class RecordingLink : public server::WorkerLink {
 public:
  void Send(const v1::SchedulerMessage& message) override { sent.push_back(message); }
  void Close(const absl::Status& status) override { closed = status; }
  std::vector<v1::AssignTask> Assigns() const {
    std::vector<v1::AssignTask> out;
    for (const auto& m : sent) {
      if (m.has_assign()) out.push_back(m.assign());
    }
    return out;
  }
  std::vector<v1::SchedulerMessage> sent;
  std::optional<absl::Status> closed;
};

struct FakeWorker {
  RecordingLink link;
  std::unique_ptr<server::WorkerSession> session;
  absl::Status Send(const v1::WorkerMessage& m) { return session->OnMessage(m); }
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/tv_scheduler_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    config_.db_path = dir_ + "/jobs.db";
    config_.artifact_dir = dir_ + "/artifacts";
    config_.check_worker_results = false;  // placeholder bytes; the check has its own tests
    config_.admission.max_queue_length = 3;
    config_.max_attempts = 2;
    Open();
  }
  void TearDown() override {
    scheduler_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    scheduler_.reset();
    metrics_.reset();
    registry_ = std::make_unique<common::metrics::Registry>();
    metrics_ = std::make_unique<SchedulerMetrics>(*registry_);
    auto catalog = ModelCatalog::LoadFile(TV_MODELS_YAML);
    ASSERT_THAT(catalog, IsOk());
    std::filesystem::create_directories(dir_);
    auto store = JobStore::Open(config_.db_path, false);
    ASSERT_THAT(store, IsOk());
    store_ = store->get();
    auto artifacts = LocalArtifactStore::Create(config_.artifact_dir);
    ASSERT_THAT(artifacts, IsOk());
    auto scheduler = Scheduler::Create(config_, std::move(*catalog), std::move(*store),
                                       std::move(*artifacts), metrics_.get());
    ASSERT_THAT(scheduler, IsOk());
    scheduler_ = std::move(*scheduler);
  }
  std::unique_ptr<FakeWorker> Connect(const std::string& id) {
    auto worker = std::make_unique<FakeWorker>();
    worker->session = scheduler_->OpenSession(&worker->link, "test", {});
    v1::WorkerMessage m;
    m.mutable_register_()->set_worker_id(id);
    m.mutable_register_()->set_node_class("cpu");
    auto* model = m.mutable_register_()->add_models();
    model->set_model_id("tiny-t2v");
    model->set_variant("turbo");
    EXPECT_THAT(worker->Send(m), IsOk());
    return worker;
  }
  static v1::SubmitVideoRequest Request(const std::string& client_id = "") {
    v1::SubmitVideoRequest r;
    r.set_model_id("tiny-t2v");
    r.set_prompt("a red ball");
    r.set_client_request_id(client_id);
    return r;
  }
  static v1::WorkerMessage Progress(const v1::AssignTask& task, int step) {
    v1::WorkerMessage m;
    auto* p = m.mutable_progress();
    p->set_task_id(task.task_id());
    p->set_attempt(task.attempt());
    p->set_stage(v1::STAGE_DENOISING);
    p->set_step(step);
    p->set_num_steps(2);
    p->set_step_seconds(0.5);
    return m;
  }
  // Uploads `video` in two chunks and reports success.
  static void Finish(FakeWorker& w, const v1::AssignTask& task, const std::string& video) {
    for (size_t off = 0; off < video.size(); off += 3) {
      v1::WorkerMessage chunk;
      chunk.mutable_chunk()->set_task_id(task.task_id());
      chunk.mutable_chunk()->set_attempt(task.attempt());
      chunk.mutable_chunk()->set_offset(static_cast<int64_t>(off));
      chunk.mutable_chunk()->set_data(video.substr(off, 3));
      ASSERT_THAT(w.Send(chunk), IsOk());
    }
    v1::WorkerMessage result;
    result.mutable_result()->set_task_id(task.task_id());
    result.mutable_result()->set_attempt(task.attempt());
    result.mutable_result()->set_ok(true);
    result.mutable_result()->set_video_bytes(static_cast<int64_t>(video.size()));
    ASSERT_THAT(w.Send(result), IsOk());
  }
  v1::JobState StateOf(const std::string& job_id) { return scheduler_->GetJob(job_id)->state(); }

  std::string dir_;
  SchedulerConfig config_;
  std::unique_ptr<common::metrics::Registry> registry_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  JobStore* store_ = nullptr;  // owned by scheduler_
};

TEST_F(SchedulerTest, SubmitIsIdempotentAndBadRequestsChangeNothing) {
  auto job = scheduler_->SubmitVideo(Request("r1"));
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job->queue_position(), 1);
  EXPECT_EQ(scheduler_->SubmitVideo(Request("r1"))->job_id(), job->job_id());
  v1::SubmitVideoRequest bad = Request("r2");
  bad.set_num_frames(80);
  EXPECT_THAT(scheduler_->SubmitVideo(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(scheduler_->ListJobs(v1::ListJobsRequest())->jobs_size(), 1);
  ASSERT_THAT(scheduler_->SubmitVideo(Request()), IsOk());
  ASSERT_THAT(scheduler_->SubmitVideo(Request()), IsOk());
  EXPECT_THAT(scheduler_->SubmitVideo(Request()), StatusIs(absl::StatusCode::kResourceExhausted));
  // A retry of an accepted request still answers while the queue is full.
  EXPECT_EQ(scheduler_->SubmitVideo(Request("r1"))->job_id(), job->job_id());
  EXPECT_THAT(scheduler_->GetJob("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SchedulerTest, RunsAJobEndToEndWithOrderedWatchEvents) {
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  std::vector<v1::Job> events;
  auto watch =
      scheduler_->WatchJob(job->job_id(), "test", [&](const v1::Job* j, const absl::Status&) {
        if (j != nullptr) events.push_back(*j);
      });
  ASSERT_THAT(watch, IsOk());
  auto worker = Connect("w1");
  ASSERT_TRUE(worker->link.sent.front().has_registered());
  ASSERT_EQ(worker->link.Assigns().size(), 1u);
  const v1::AssignTask task = worker->link.Assigns()[0];
  EXPECT_EQ(task.attempt(), 1);
  EXPECT_EQ(task.job().width_pixels(), 64);
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_ASSIGNED);
  ASSERT_THAT(worker->Send(Progress(task, 1)), IsOk());
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_RUNNING);
  ASSERT_THAT(worker->Send(Progress(task, 2)), IsOk());
  EXPECT_THAT(scheduler_->OpenVideo(job->job_id()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  Finish(*worker, task, "fake-mp4-bytes");
  auto done = scheduler_->GetJob(job->job_id());
  ASSERT_THAT(done, IsOk());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done->video_bytes(), 14);
  auto video = scheduler_->OpenVideo(job->job_id());
  ASSERT_THAT(video, IsOk());
  EXPECT_EQ(*(*video)->Read(1 << 20), "fake-mp4-bytes");
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events.front().state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(events.back().state(), v1::JOB_STATE_SUCCEEDED);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GE(events[i].state(), events[i - 1].state());
    EXPECT_GE(events[i].progress(), events[i - 1].progress());
  }
  const std::string metrics = registry_->Render();
  EXPECT_NE(metrics.find(
                "turbovid_jobs_total{model=\"tiny-t2v\",variant=\"turbo\",state=\"succeeded\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("turbovid_job_duration_seconds_count{model=\"tiny-t2v\",variant=\"turbo\","
                         "node_class=\"cpu\",resolution=\"480p\"} 1"),
            std::string::npos)
      << metrics;
}

TEST_F(SchedulerTest, StaleResultsAreIgnoredAndLostWorkersRequeue) {
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  auto w1 = Connect("w1");
  const v1::AssignTask first = w1->link.Assigns().at(0);
  ASSERT_THAT(w1->Send(Progress(first, 1)), IsOk());
  w1->session->OnClosed();  // kill -9: the stream drops
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_QUEUED);
  auto w2 = Connect("w2");
  const v1::AssignTask second = w2->link.Assigns().at(0);
  EXPECT_EQ(second.attempt(), 2);
  // The first attempt's late result (through the new worker's stream) is not this attempt.
  v1::AssignTask stale = second;
  stale.set_attempt(1);
  Finish(*w2, stale, "old");
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_ASSIGNED);
  // A lease expiry with max_attempts = 2 fails the job naming the reason.
  scheduler_->ExpireLeases(Scheduler::SteadyNow() + config_.lease_seconds + 1);
  ASSERT_TRUE(w2->link.closed.has_value());
  auto failed = scheduler_->GetJob(job->job_id());
  EXPECT_EQ(failed->state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed->error(), ::testing::HasSubstr("worker lost 2 times"));
  EXPECT_NE(registry_->Render().find("turbovid_jobs_failed_total{model=\"tiny-t2v\",variant=\"turbo\","
                                     "reason=\"worker_lost\"} 1"),
            std::string::npos);
}

// A failure the worker reports is counted under its status code; the oldest-queued-age gauge
// follows the queue (a waiting job's age, 0 once the queue is empty).
TEST_F(SchedulerTest, FailureReasonAndOldestQueuedAgeMetrics) {
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  scheduler_->CollectMetrics();  // main.cc runs it as the registry's collect hook
  std::string text = registry_->Render();
  EXPECT_NE(text.find("turbovid_queue_oldest_age_seconds{model=\"tiny-t2v\"} "), std::string::npos)
      << text;
  EXPECT_EQ(text.find("turbovid_queue_oldest_age_seconds{model=\"tiny-t2v\"} 0\n"),
            std::string::npos);  // a queued job has an age (its submit time is in the past)
  auto w = Connect("w1");
  const v1::AssignTask task = w->link.Assigns().at(0);
  v1::WorkerMessage result;
  result.mutable_result()->set_task_id(task.task_id());
  result.mutable_result()->set_attempt(task.attempt());
  result.mutable_result()->set_ok(false);
  result.mutable_result()->set_error_code(static_cast<int>(absl::StatusCode::kResourceExhausted));
  result.mutable_result()->set_error("model does not fit");
  ASSERT_THAT(w->Send(result), IsOk());
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_FAILED);
  scheduler_->CollectMetrics();
  text = registry_->Render();
  EXPECT_NE(text.find("turbovid_jobs_failed_total{model=\"tiny-t2v\",variant=\"turbo\","
                      "reason=\"resource_exhausted\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("turbovid_queue_oldest_age_seconds{model=\"tiny-t2v\"} 0\n"),
            std::string::npos)
      << text;
}

TEST_F(SchedulerTest, CancelQueuedAtOnceAndRunningThroughTheWorker) {
  auto queued = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(queued, IsOk());
  EXPECT_EQ(scheduler_->CancelJob(queued->job_id())->state(), v1::JOB_STATE_CANCELLED);
  auto running = scheduler_->SubmitVideo(Request());
  auto worker = Connect("w1");
  const v1::AssignTask task = worker->link.Assigns().at(0);
  EXPECT_EQ(task.task_id(), running->job_id());
  ASSERT_THAT(worker->Send(Progress(task, 1)), IsOk());
  EXPECT_EQ(scheduler_->CancelJob(running->job_id())->state(), v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(worker->link.sent.back().has_cancel());
  EXPECT_EQ(worker->link.sent.back().cancel().attempt(), 1);
  v1::WorkerMessage result;
  result.mutable_result()->set_task_id(task.task_id());
  result.mutable_result()->set_attempt(task.attempt());
  result.mutable_result()->set_cancelled(true);
  ASSERT_THAT(worker->Send(result), IsOk());
  EXPECT_EQ(StateOf(running->job_id()), v1::JOB_STATE_CANCELLED);
  // The worker takes the next job.
  auto next = scheduler_->SubmitVideo(Request());
  EXPECT_EQ(worker->link.Assigns().back().task_id(), next->job_id());
}

TEST_F(SchedulerTest, RestartRequeuesRunningJobsKeepingAttempts) {
  auto job = scheduler_->SubmitVideo(Request("keep"));
  ASSERT_THAT(job, IsOk());
  {
    auto worker = Connect("w1");
    ASSERT_THAT(worker->Send(Progress(worker->link.Assigns().at(0), 1)), IsOk());
    Open();  // the old scheduler is gone without a shutdown (its worker never reports back)
    worker->session.reset();
  }
  auto recovered = scheduler_->GetJob(job->job_id());
  ASSERT_THAT(recovered, IsOk());
  EXPECT_EQ(recovered->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(recovered->attempts(), 1);
  EXPECT_EQ(scheduler_->SubmitVideo(Request("keep"))->job_id(), job->job_id());
  auto worker = Connect("w2");
  const v1::AssignTask task = worker->link.Assigns().at(0);
  EXPECT_EQ(task.attempt(), 2);
  Finish(*worker, task, "video");
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_SUCCEEDED);
}

// Every attempt renders the job resolved at admission, drawn seed included: after a lost worker
// and after a scheduler restart the assignment carries the same ResolvedJob.
TEST_F(SchedulerTest, ResolvedJobSurvivesRequeueAndRestartUnchanged) {
  config_.max_attempts = 5;
  Open();
  v1::SubmitVideoRequest request = Request("same");
  request.set_random_seed(true);
  auto job = scheduler_->SubmitVideo(request);
  ASSERT_THAT(job, IsOk());
  auto w1 = Connect("w1");
  const v1::AssignTask first = w1->link.Assigns().at(0);
  const v1::ResolvedJob& resolved = first.job();
  EXPECT_EQ(resolved.model_id(), "tiny-t2v");
  EXPECT_EQ(resolved.variant(), "turbo");
  EXPECT_EQ(resolved.sampler(), v1::SAMPLER_RCM);
  EXPECT_EQ(resolved.attention(), v1::ATTENTION_MODE_SLA);
  EXPECT_GT(resolved.num_steps(), 0);
  EXPECT_GT(resolved.width_pixels(), 0);
  EXPECT_EQ(resolved.seed(), job->seed());
  EXPECT_EQ(resolved.prompt(), "a red ball");
  w1->session->OnClosed();  // the worker is lost: requeued
  auto w2 = Connect("w2");
  const v1::AssignTask second = w2->link.Assigns().at(0);
  EXPECT_EQ(second.attempt(), 2);
  EXPECT_EQ(second.job().SerializeAsString(), resolved.SerializeAsString());
  ASSERT_THAT(w2->Send(Progress(second, 1)), IsOk());
  Open();  // restart while running: recovered from the store
  w2->session.reset();
  auto w3 = Connect("w3");
  const v1::AssignTask third = w3->link.Assigns().at(0);
  EXPECT_EQ(third.attempt(), 3);
  EXPECT_EQ(third.job().SerializeAsString(), resolved.SerializeAsString());
  EXPECT_EQ(scheduler_->GetJob(job->job_id())->seed(), resolved.seed());
}

// A job stored before jobs carried a ResolvedJob is recovered with one rebuilt from its accepted
// request (every default already filled in there) and the catalog variant.
TEST_F(SchedulerTest, RecoveryRebuildsTheResolvedJobOfAnOlderRow) {
  scheduler_.reset();
  {
    auto store = JobStore::Open(config_.db_path, false);
    ASSERT_THAT(store, IsOk());
    store_ = store->get();
    StoredJob old;
    old.job_id = "j-old";
    old.request = Request();
    old.request.set_variant("turbo");
    old.request.set_num_steps(2);
    old.request.set_num_frames(5);
    old.request.set_seed(99);
    old.request.set_attention(v1::ATTENTION_MODE_DENSE);
    old.request.mutable_size()->set_width_pixels(64);
    old.request.mutable_size()->set_height_pixels(48);
    old.seed = 99;
    old.width_pixels = 64;
    old.height_pixels = 48;
    ASSERT_THAT((*store)->Insert(old), IsOk());  // `job` left empty, as in an older row
  }
  Open();
  auto worker = Connect("w1");
  const v1::AssignTask task = worker->link.Assigns().at(0);
  EXPECT_EQ(task.task_id(), "j-old");
  EXPECT_EQ(task.job().variant(), "turbo");
  EXPECT_EQ(task.job().sampler(), v1::SAMPLER_RCM);
  EXPECT_EQ(task.job().num_steps(), 2);
  EXPECT_EQ(task.job().num_frames(), 5);
  EXPECT_EQ(task.job().width_pixels(), 64);
  EXPECT_EQ(task.job().seed(), 99u);
  EXPECT_EQ(task.job().attention(), v1::ATTENTION_MODE_DENSE);
  EXPECT_EQ(task.job().prompt(), "a red ball");
}

TEST_F(SchedulerTest, ReturnedTaskWaitsForTheNextHeartbeat) {
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  auto worker = Connect("w1");
  const v1::AssignTask task = worker->link.Assigns().at(0);
  v1::WorkerMessage returned;
  returned.mutable_returned()->set_task_id(task.task_id());
  returned.mutable_returned()->set_attempt(task.attempt());
  returned.mutable_returned()->set_reason("worker is draining");
  ASSERT_THAT(worker->Send(returned), IsOk());
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(worker->link.Assigns().size(), 1u);
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_draining(false);
  ASSERT_THAT(worker->Send(heartbeat), IsOk());
  ASSERT_EQ(worker->link.Assigns().size(), 2u);
  EXPECT_EQ(worker->link.Assigns()[1].attempt(), 2);
  EXPECT_EQ(scheduler_->GetJob(job->job_id())->attempts(), 2);
}

// Placement follows the model list of each heartbeat: the worker that reports the job's model
// loaded takes it, whichever that is at the time; a heartbeat without a list changes nothing.
TEST_F(SchedulerTest, HeartbeatModelListSteersPlacementToTheWarmWorker) {
  auto w0 = Connect("w0");  // both register the model cold
  auto w1 = Connect("w1");
  auto beat = [](FakeWorker& w, std::optional<bool> loaded) {
    v1::WorkerMessage m;
    m.mutable_heartbeat()->set_draining(false);
    if (loaded.has_value()) {
      auto* model = m.mutable_heartbeat()->add_models();
      model->set_model_id("tiny-t2v");
      model->set_variant("turbo");
      model->set_loaded(*loaded);
    }
    ASSERT_THAT(w.Send(m), IsOk());
  };
  beat(*w1, true);
  auto first = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(first, IsOk());
  ASSERT_EQ(w1->link.Assigns().size(), 1u);  // w1 is warm; w0 would win the id tie-break
  EXPECT_EQ(w0->link.Assigns().size(), 0u);
  Finish(*w1, w1->link.Assigns()[0], "video");
  ASSERT_EQ(StateOf(first->job_id()), v1::JOB_STATE_SUCCEEDED);
  beat(*w1, false);  // w1 evicted it, w0 loaded it
  beat(*w0, true);
  beat(*w1, std::nullopt);  // no list: w1 stays cold
  auto second = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(second, IsOk());
  ASSERT_EQ(w0->link.Assigns().size(), 1u);
  EXPECT_EQ(w0->link.Assigns()[0].task_id(), second->job_id());
  EXPECT_EQ(w1->link.Assigns().size(), 1u);
}

TEST_F(SchedulerTest, I2vImageReachesTheWorkerFromTheStore) {
  // A 1x1 PNG: signature, IHDR, IDAT, IEND.
  static const unsigned char kPng[] = {
      0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
      0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78,
      0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0, 0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99,
      0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
  const std::string png(reinterpret_cast<const char*>(kPng), sizeof(kPng));
  v1::SubmitVideoRequest request = Request();
  request.set_model_id("tiny-i2v");
  request.set_image(png);
  auto job = scheduler_->SubmitVideo(request);
  ASSERT_THAT(job, IsOk());
  EXPECT_TRUE(job->request().image().empty());  // Job.request has the image stripped
  Open();                                       // and it survives a restart
  auto worker = std::make_unique<FakeWorker>();
  worker->session = scheduler_->OpenSession(&worker->link, "test", {});
  v1::WorkerMessage hello;
  hello.mutable_register_()->set_worker_id("i2v");
  hello.mutable_register_()->set_node_class("cpu");
  hello.mutable_register_()->add_models()->set_model_id("tiny-i2v");
  hello.mutable_register_()->mutable_models(0)->set_variant("turbo");
  ASSERT_THAT(worker->Send(hello), IsOk());
  ASSERT_EQ(worker->link.Assigns().size(), 1u);
  EXPECT_EQ(worker->link.Assigns()[0].image(), png);
}

TEST_F(SchedulerTest, ProtocolErrorsEndTheStream) {
  auto worker = std::make_unique<FakeWorker>();
  worker->session = scheduler_->OpenSession(&worker->link, "test", {});
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat();
  EXPECT_THAT(worker->Send(heartbeat), StatusIs(absl::StatusCode::kInvalidArgument));
  auto typo = std::make_unique<FakeWorker>();
  typo->session = scheduler_->OpenSession(&typo->link, "test", {});
  v1::WorkerMessage hello;
  hello.mutable_register_()->set_worker_id("w9");
  hello.mutable_register_()->set_node_class("H100");
  EXPECT_THAT(typo->Send(hello), StatusIs(absl::StatusCode::kInvalidArgument));
  auto job = scheduler_->SubmitVideo(Request());
  auto w = Connect("w1");
  const v1::AssignTask task = w->link.Assigns().at(0);
  v1::WorkerMessage chunk;
  chunk.mutable_chunk()->set_task_id(task.task_id());
  chunk.mutable_chunk()->set_attempt(task.attempt());
  chunk.mutable_chunk()->set_offset(5);  // a gap
  chunk.mutable_chunk()->set_data("x");
  EXPECT_THAT(w->Send(chunk), StatusIs(absl::StatusCode::kInvalidArgument));
}

// 1,000 idle watchers of other jobs must not slow a cancel: a cancel at the queue's tail moves
// nobody, so it notifies nobody. Medians of many cancels, a generous factor (loaded CI).
TEST_F(SchedulerTest, IdleWatchersOfOtherJobsDoNotSlowCancel) {
  config_.admission.max_queue_length = 2000;
  Open();
  constexpr int kWatched = 1000;
  constexpr int kCancels = 41;
  std::vector<std::string> watched, baseline, loaded;
  for (int i = 0; i < kWatched + 2 * kCancels; ++i) {
    auto job = scheduler_->SubmitVideo(Request());
    ASSERT_THAT(job, IsOk());
    (i < kWatched ? watched : i < kWatched + kCancels ? baseline : loaded).push_back(job->job_id());
  }
  auto median_cancel_seconds = [&](const std::vector<std::string>& ids) {
    std::vector<double> seconds;
    for (auto id = ids.rbegin(); id != ids.rend(); ++id) {  // newest first: always the tail
      const double start = Scheduler::SteadyNow();
      auto cancelled = scheduler_->CancelJob(*id);
      seconds.push_back(Scheduler::SteadyNow() - start);
      EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
    }
    std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
    return seconds[seconds.size() / 2];
  };
  // `loaded` jobs stand behind `baseline`, so the baseline cancels move unwatched jobs only.
  const double without = median_cancel_seconds(baseline);
  int events = 0;
  std::vector<uint64_t> ids;
  for (int i = 0; i < kWatched; ++i) {
    auto id = scheduler_->WatchJob(watched[i], "client" + std::to_string(i / 50),
                                   [&](const v1::Job* job, const absl::Status&) {
                                     if (job != nullptr) ++events;
                                   });
    ASSERT_THAT(id, IsOk());
    ids.push_back(*id);
  }
  const double with = median_cancel_seconds(loaded);
  std::printf("median cancel: %.1f us without watchers, %.1f us with %d idle watchers\n",
              without * 1e6, with * 1e6, kWatched);
  EXPECT_EQ(events, kWatched);  // the first snapshot each, nothing from the cancels
  EXPECT_LT(with, 2 * without + 200e-6);
  for (uint64_t id : ids) scheduler_->Unwatch(id);
}

// A cancel ahead of watched jobs does move them: their watchers hear the new position.
TEST_F(SchedulerTest, QueuePositionUpdatesReachOnlyJobsThatMoved) {
  auto first = scheduler_->SubmitVideo(Request());
  auto second = scheduler_->SubmitVideo(Request());
  auto third = scheduler_->SubmitVideo(Request());
  std::vector<int> second_positions, first_positions;
  ASSERT_THAT(scheduler_->WatchJob(first->job_id(), "c",
                                   [&](const v1::Job* j, const absl::Status&) {
                                     if (j) first_positions.push_back(j->queue_position());
                                   }),
              IsOk());
  ASSERT_THAT(scheduler_->WatchJob(third->job_id(), "c",
                                   [&](const v1::Job* j, const absl::Status&) {
                                     if (j) second_positions.push_back(j->queue_position());
                                   }),
              IsOk());
  ASSERT_THAT(scheduler_->CancelJob(second->job_id()), IsOk());
  EXPECT_THAT(first_positions, ::testing::ElementsAre(1));
  EXPECT_THAT(second_positions, ::testing::ElementsAre(3, 2));
}

TEST_F(SchedulerTest, WatchStreamsAreBoundedPerClientAndInAll) {
  config_.max_watch_streams = 100;
  Open();
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  auto noop = [](const v1::Job*, const absl::Status&) {};
  std::vector<uint64_t> ids;
  for (int i = 0; i < 64; ++i) {
    auto id = scheduler_->WatchJob(job->job_id(), "ipv4:10.0.0.1", noop);
    ASSERT_THAT(id, IsOk());
    ids.push_back(*id);
  }
  EXPECT_THAT(scheduler_->WatchJob(job->job_id(), "ipv4:10.0.0.1", noop),
              StatusIs(absl::StatusCode::kResourceExhausted));
  scheduler_->Unwatch(ids.back());
  EXPECT_THAT(scheduler_->WatchJob(job->job_id(), "ipv4:10.0.0.1", noop), IsOk());
  for (int i = 0; i < 36; ++i) {
    EXPECT_THAT(scheduler_->WatchJob(job->job_id(), "ipv4:10.0.0.2", noop), IsOk());
  }
  EXPECT_THAT(scheduler_->WatchJob(job->job_id(), "ipv4:10.0.0.3", noop),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // The final snapshot ends every watch and frees the budget.
  ASSERT_THAT(scheduler_->CancelJob(job->job_id()), IsOk());
  auto next = scheduler_->SubmitVideo(Request());
  EXPECT_THAT(scheduler_->WatchJob(next->job_id(), "ipv4:10.0.0.1", noop), IsOk());
}

// The disk is full when a job finishes: its video is committed but SUCCEEDED is not stored.
// Clients see SUCCEEDED at once, the row follows once the store recovers, and a restart does
// not run the job again.
TEST_F(SchedulerTest, FinishRefusedByTheStoreIsRetriedUntilStored) {
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  auto worker = Connect("w1");
  const v1::AssignTask task = worker->link.Assigns().at(0);
  ASSERT_THAT(worker->Send(Progress(task, 1)), IsOk());
  store_->FailNextWritesForTesting(3);  // the finish and its first two retries
  Finish(*worker, task, "video");
  EXPECT_EQ(scheduler_->PendingFinishes(), 1);
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(store_->Get(job->job_id())->state, v1::JOB_STATE_RUNNING);
  double now = Scheduler::SteadyNow();
  scheduler_->RetryPendingFinishes(now);  // before the first backoff ends: not tried
  EXPECT_EQ(scheduler_->PendingFinishes(), 1);
  for (int i = 0; i < 3; ++i) scheduler_->RetryPendingFinishes(now += 60);
  EXPECT_EQ(scheduler_->PendingFinishes(), 0);
  auto stored = store_->Get(job->job_id());
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(stored->state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(stored->video_bytes, 5);
  worker->session.reset();
  Open();
  auto again = Connect("w2");
  EXPECT_TRUE(again->link.Assigns().empty());
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_SUCCEEDED);
}

// The store never recovers before the scheduler stops: the restart finds the committed
// artifact under a RUNNING row and finishes the job from it without asking a worker.
TEST_F(SchedulerTest, RestartFinishesFromACommittedArtifactWithoutRerunning) {
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  {
    auto worker = Connect("w1");
    const v1::AssignTask task = worker->link.Assigns().at(0);
    ASSERT_THAT(worker->Send(Progress(task, 1)), IsOk());
    store_->FailNextWritesForTesting(1000);
    Finish(*worker, task, "video!");
    EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_SUCCEEDED);
    scheduler_->Stop();  // its last retry fails too
    EXPECT_EQ(store_->Get(job->job_id())->state, v1::JOB_STATE_RUNNING);
    Open();
    worker->session.reset();
  }
  auto worker = Connect("w2");
  EXPECT_TRUE(worker->link.Assigns().empty());
  auto recovered = scheduler_->GetJob(job->job_id());
  ASSERT_THAT(recovered, IsOk());
  EXPECT_EQ(recovered->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(recovered->video_bytes(), 6);
  EXPECT_EQ(recovered->attempts(), 1);
  EXPECT_EQ(store_->Get(job->job_id())->state, v1::JOB_STATE_SUCCEEDED);
  auto video = scheduler_->OpenVideo(job->job_id());
  EXPECT_THAT(video, IsOk());
}

TEST_F(SchedulerTest, UnservableJobSaysSoAndFailsAfterTheTimeout) {
  config_.unservable_job_timeout_seconds = 30;
  Open();
  auto w = Connect("w1");  // serves tiny-t2v:turbo only
  v1::SubmitVideoRequest original = Request();
  original.set_variant("original");
  auto job = scheduler_->SubmitVideo(original);
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  EXPECT_THAT(job->status_message(), ::testing::HasSubstr("no registered worker serves tiny-t2v "
                                                          "variant original"));
  scheduler_->CollectMetrics();
  EXPECT_THAT(
      registry_->Render(),
      ::testing::HasSubstr("turbovid_queue_unservable_oldest_age_seconds{model=\"tiny-t2v\","
                           "variant=\"original\"}"));
  // A served job carries no message.
  auto served = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(served, IsOk());
  EXPECT_EQ(served->status_message(), "");
  const double now = Scheduler::SteadyNow();
  scheduler_->CheckUnservable(now + 10);
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_QUEUED);
  scheduler_->CheckUnservable(now + 31);
  auto failed = scheduler_->GetJob(job->job_id());
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed->error(), ::testing::HasSubstr("unservable_job_timeout_seconds"));
  scheduler_->CollectMetrics();
  EXPECT_THAT(
      registry_->Render(),
      ::testing::HasSubstr("turbovid_queue_unservable_oldest_age_seconds{model=\"tiny-t2v\","
                           "variant=\"original\"} 0"));
}

TEST_F(SchedulerTest, UnservableMarkClearsWhenAWorkerServesIt) {
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  EXPECT_NE(job->status_message(), "");  // no worker at all
  auto w = Connect("w1");                // takes it at once
  EXPECT_EQ(StateOf(job->job_id()), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(scheduler_->GetJob(job->job_id())->status_message(), "");
}

TEST_F(SchedulerTest, WorkerWithModelsOutsideTheCatalogIsRefused) {
  for (const auto& [model, variant] :
       {std::pair<std::string, std::string>{"no-such-model", "turbo"},
        {"tiny-t2v", "no-such-variant"}}) {
    FakeWorker worker;
    worker.session = scheduler_->OpenSession(&worker.link, "test", {});
    v1::WorkerMessage m;
    m.mutable_register_()->set_worker_id("bad");
    m.mutable_register_()->set_node_class("cpu");
    auto* listed = m.mutable_register_()->add_models();
    listed->set_model_id(model);
    listed->set_variant(variant);
    EXPECT_THAT(worker.Send(m), StatusIs(absl::StatusCode::kInvalidArgument));
    worker.session->OnClosed();
  }
  EXPECT_EQ(scheduler_->RegisteredWorkers(), 0);
  // A heartbeat listing an unknown model ends the stream too.
  auto w = Connect("w1");
  v1::WorkerMessage beat;
  auto* listed = beat.mutable_heartbeat()->add_models();
  listed->set_model_id("no-such-model");
  listed->set_variant("turbo");
  EXPECT_THAT(w->Send(beat), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SchedulerTest, ListsModelsAndWorkers) {
  auto w = Connect("w1");
  auto models = scheduler_->ListModels();
  ASSERT_THAT(models, IsOk());
  const v1::ModelInfo* tiny = nullptr;
  for (const auto& m : models->models()) {
    if (m.model_id() == "tiny-t2v") tiny = &m;
  }
  ASSERT_NE(tiny, nullptr);
  EXPECT_EQ(tiny->default_width_pixels(), 64);
  ASSERT_GE(tiny->variants_size(), 2);
  EXPECT_EQ(tiny->variants(0).variant(), "turbo");
  EXPECT_TRUE(tiny->variants(0).is_default());
  EXPECT_EQ(tiny->variants(0).workers(), 1);
  EXPECT_EQ(tiny->variants(1).workers(), 0);
  EXPECT_THAT(tiny->variants(0).node_classes(), ::testing::Contains("cpu"));
  auto workers = scheduler_->ListWorkers();
  ASSERT_THAT(workers, IsOk());
  ASSERT_EQ(workers->workers_size(), 1);
  EXPECT_EQ(workers->workers(0).worker_id(), "w1");
  EXPECT_EQ(workers->workers(0).node_class(), "cpu");
  ASSERT_EQ(workers->workers(0).models_size(), 1);
  EXPECT_EQ(workers->workers(0).models(0).model_id(), "tiny-t2v");
}

TEST_F(SchedulerTest, DeletedJobsAreGoneButStayInTheStore) {
  auto w = Connect("w1");
  auto done = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(done, IsOk());
  ASSERT_EQ(w->link.Assigns().size(), 1u);
  Finish(*w, w->link.Assigns()[0], "mp4 bytes");
  ASSERT_EQ(StateOf(done->job_id()), v1::JOB_STATE_SUCCEEDED);
  auto queued = scheduler_->SubmitVideo(Request());
  auto running = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(queued, IsOk());
  ASSERT_THAT(running, IsOk());
  ASSERT_EQ(w->link.Assigns().size(), 2u);  // `queued` is running now, `running` waits
  EXPECT_THAT(scheduler_->DeleteJob(done->job_id()), IsOk());
  EXPECT_THAT(scheduler_->GetJob(done->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(scheduler_->OpenVideo(done->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(scheduler_->DeleteJob(done->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(config_.artifact_dir + "/" + done->job_id() + ".mp4"));
  // A running job is cancelled on its worker; a queued one at once.
  EXPECT_THAT(scheduler_->DeleteJob(queued->job_id()), IsOk());
  EXPECT_TRUE(w->link.sent.back().has_cancel());
  EXPECT_THAT(scheduler_->DeleteJob(running->job_id()), IsOk());
  auto list = scheduler_->ListJobs(v1::ListJobsRequest());
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->jobs_size(), 0);
  // The rows stay, marked; across a restart the deleted jobs stay gone.
  w.reset();
  scheduler_.reset();
  {
    auto store = JobStore::Open(config_.db_path, false);
    ASSERT_THAT(store, IsOk());
    auto row = (*store)->Get(done->job_id());
    ASSERT_THAT(row, IsOk());
    EXPECT_GT(row->deleted_unix_seconds, 0);
  }
  Open();
  EXPECT_THAT(scheduler_->GetJob(queued->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(scheduler_->ListJobs(v1::ListJobsRequest())->jobs_size(), 0);
}

TEST_F(SchedulerTest, ListsOldestFirstAndAfterAJob) {
  config_.admission.max_queue_length = 10;
  Open();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(scheduler_->SubmitVideo(Request())->job_id());
  v1::ListJobsRequest request;
  request.set_oldest_first(true);
  request.set_page_size(2);
  auto page = scheduler_->ListJobs(request);
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->jobs_size(), 2);
  EXPECT_EQ(page->jobs(0).job_id(), ids[0]);
  request.set_page_token(page->next_page_token());
  page = scheduler_->ListJobs(request);
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->jobs(0).job_id(), ids[2]);
  v1::ListJobsRequest after;
  after.set_after_job_id(ids[3]);  // newest first: the jobs older than ids[3]
  page = scheduler_->ListJobs(after);
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->jobs_size(), 3);
  EXPECT_EQ(page->jobs(0).job_id(), ids[2]);
  after.set_oldest_first(true);
  page = scheduler_->ListJobs(after);
  ASSERT_EQ(page->jobs_size(), 1);
  EXPECT_EQ(page->jobs(0).job_id(), ids[4]);
  after.set_after_job_id("jnope");
  EXPECT_THAT(scheduler_->ListJobs(after), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace turbovid::scheduler

namespace turbovid::scheduler {
namespace {

TEST_F(SchedulerTest, TenantQuotasAndScopedIdempotencyKeys) {
  config_.admission.max_queue_length = 10;
  config_.quotas.max_active_jobs = 2;
  Open();
  auto as = [](const std::string& tenant, const std::string& id) {
    v1::SubmitVideoRequest r = Request(id);
    r.set_tenant(tenant);
    return r;
  };
  auto a1 = scheduler_->SubmitVideo(as("alice", "same"));
  ASSERT_THAT(a1, IsOk());
  EXPECT_EQ(a1->request().tenant(), "alice");
  // The same client_request_id from another tenant is another job.
  auto b1 = scheduler_->SubmitVideo(as("bob", "same"));
  ASSERT_THAT(b1, IsOk());
  EXPECT_NE(b1->job_id(), a1->job_id());
  EXPECT_EQ(scheduler_->SubmitVideo(as("alice", "same"))->job_id(), a1->job_id());
  ASSERT_THAT(scheduler_->SubmitVideo(as("alice", "")), IsOk());
  const auto refused = scheduler_->SubmitVideo(as("alice", ""));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(refused.status().message().find("tenant 'alice'"), std::string::npos);
  ASSERT_THAT(scheduler_->SubmitVideo(as("bob", "")), IsOk());  // bob has his own cap
  EXPECT_NE(registry_->Render().find("turbovid_quota_refusals_total{reason=\"active_jobs\"} 1"),
            std::string::npos);
  // A cancelled job frees its place.
  ASSERT_THAT(scheduler_->CancelJob(a1->job_id()), IsOk());
  EXPECT_THAT(scheduler_->SubmitVideo(as("alice", "")), IsOk());
  // Listing by tenant is exact.
  v1::ListJobsRequest list;
  list.set_tenant("bob");
  auto bobs = scheduler_->ListJobs(list);
  ASSERT_THAT(bobs, IsOk());
  EXPECT_EQ(bobs->jobs_size(), 2);
  for (const v1::Job& job : bobs->jobs()) EXPECT_EQ(job.request().tenant(), "bob");
  // Control characters cannot forge a tenant-scoped key.
  EXPECT_THAT(scheduler_->SubmitVideo(as("", "alice\x1fsame")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace turbovid::scheduler

// Retention, the artifact store's limit, GPU-seconds per tenant and the result check.
namespace turbovid::scheduler {
namespace {

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A minimal MP4 (ftyp, moov with one avc1 video track, mdat) of `frames` samples at w x h:
// what the result check reads (engine/video/mp4_probe.h).
std::string TinyMp4(int frames, int width, int height) {
  auto u16 = [](uint32_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v)}; };
  auto u32 = [&](uint32_t v) { return u16(v >> 16) + u16(v & 0xffff); };
  auto box = [&](const std::string& type, const std::string& body) {
    return u32(static_cast<uint32_t>(8 + body.size())) + type + body;
  };
  auto full = [&](const std::string& type, const std::string& body) {
    return box(type, std::string(4, '\0') + body);
  };
  const std::string entry =
      box("avc1", std::string(6, '\0') + u16(1) + std::string(16, '\0') + u16(width) +
                      u16(height) + u32(0x00480000) + u32(0x00480000) + u32(0) + u16(1) +
                      std::string(32, '\0') + u16(0x18) + u16(0xffff) +
                      box("avcC", std::string("\x01\x64\x00\x1f\xff\xe0", 6)));
  std::string stsz = u32(0) + u32(frames);
  for (int i = 0; i < frames; ++i) stsz += u32(4);
  const std::string stbl = full("stsd", u32(1) + entry) + full("stts", u32(1) + u32(frames) +
                                                                           u32(1000)) +
                           full("stsz", stsz) + full("stco", u32(1) + u32(0));
  const std::string mdhd = full("mdhd", u32(0) + u32(0) + u32(16000) +
                                            u32(static_cast<uint32_t>(frames) * 1000) +
                                            u32(0x55c40000));
  const std::string hdlr = full("hdlr", u32(0) + "vide" + std::string(12, '\0') + "v" + '\0');
  const std::string trak = box("trak", box("mdia", mdhd + hdlr + box("minf", box("stbl", stbl))));
  const std::string moov = box("moov", full("mvhd", std::string(96, '\0')) + trak);
  return box("ftyp", "isom" + u32(0x200) + "isomavc1") + moov +
         box("mdat", std::string(static_cast<size_t>(frames) * 4, '\x42'));
}

// A minimal fragmented MP4 of w x h: [ftyp + moov (mvex/trex, no samples) + the first fragment,
// then one moof + mdat per further fragment], `frames[i]` samples of 4 bytes in fragment i.
std::vector<std::string> TinyFragmentedMp4(const std::vector<int>& frames, int width, int height) {
  auto u16 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  auto u32 = [&](uint32_t v) { return u16(v >> 16) + u16(v & 0xffff); };
  auto box = [&](const std::string& type, const std::string& body) {
    return u32(static_cast<uint32_t>(8 + body.size())) + type + body;
  };
  auto full = [&](const std::string& type, uint32_t flags, const std::string& body) {
    return box(type, u32(flags) + body);
  };
  const std::string entry =
      box("avc1", std::string(6, '\0') + u16(1) + std::string(16, '\0') + u16(width) + u16(height) +
                      u32(0x00480000) + u32(0x00480000) + u32(0) + u16(1) + std::string(32, '\0') +
                      u16(0x18) + u16(0xffff) +
                      box("avcC", std::string("\x01\x64\x00\x1f\xff\xe0", 6)));
  const std::string stbl = full("stsd", 0, u32(1) + entry) + full("stts", 0, u32(0)) +
                           full("stsz", 0, u32(0) + u32(0)) + full("stco", 0, u32(0));
  const std::string mdhd = full("mdhd", 0, u32(0) + u32(0) + u32(16000) + u32(0) + u32(0x55c40000));
  const std::string hdlr = full("hdlr", 0, u32(0) + "vide" + std::string(12, '\0') + "v" + '\0');
  const std::string tkhd = full("tkhd", 3, u32(0) + u32(0) + u32(1) + std::string(68, '\0'));
  const std::string trak =
      box("trak", tkhd + box("mdia", mdhd + hdlr + box("minf", box("stbl", stbl))));
  const std::string mvex =
      box("mvex", full("trex", 0, u32(1) + u32(1) + u32(1000) + u32(0) + u32(0)));
  const std::string moov = box("moov", full("mvhd", 0, std::string(96, '\0')) + trak + mvex);
  std::vector<std::string> pieces;
  for (size_t i = 0; i < frames.size(); ++i) {
    std::string sizes;
    for (int f = 0; f < frames[i]; ++f) sizes += u32(4);
    // data_offset: past this moof (8 + 16 mfhd + 8 traf + 16 tfhd + 20 trun header) + sizes,
    // then the mdat header.
    const uint32_t moof_size = 8 + 16 + 8 + 16 + 20 + static_cast<uint32_t>(sizes.size());
    const std::string traf =
        box("traf", full("tfhd", 0x020000, u32(1)) +
                        full("trun", 0x000201, u32(frames[i]) + u32(moof_size + 8) + sizes));
    std::string fragment = box("moof", full("mfhd", 0, u32(static_cast<uint32_t>(i + 1))) + traf) +
                           box("mdat", std::string(static_cast<size_t>(frames[i]) * 4, '\x42'));
    pieces.push_back(i == 0 ? box("ftyp", "isom" + u32(0x200) + "isomiso6") + moov + fragment
                            : fragment);
  }
  return pieces;
}

// Sends `bytes` at `offset` in chunks of `step` bytes.
void SendChunks(FakeWorker& w, const v1::AssignTask& task, const std::string& bytes, int64_t offset,
                size_t step) {
  for (size_t at = 0; at < bytes.size(); at += step) {
    v1::WorkerMessage chunk;
    chunk.mutable_chunk()->set_task_id(task.task_id());
    chunk.mutable_chunk()->set_attempt(task.attempt());
    chunk.mutable_chunk()->set_offset(offset + static_cast<int64_t>(at));
    chunk.mutable_chunk()->set_data(bytes.substr(at, step));
    ASSERT_THAT(w.Send(chunk), IsOk());
  }
}

// Progressive: a reader opened while the job waits follows the attempt's stream; only whole
// checked fragments reach it (a half-sent fragment is held back), the stream ends OK with the
// file, which equals the stored one; the first-bytes histogram counts the job.
TEST_F(SchedulerTest, ProgressiveJobsRelayWholeCheckedFragmentsToReaders) {
  config_.check_worker_results = true;
  Open();
  v1::SubmitVideoRequest request = Request();
  request.set_progressive(true);
  auto job = scheduler_->SubmitVideo(request);
  ASSERT_THAT(job, IsOk());
  auto source = scheduler_->OpenVideo(job->job_id());
  ASSERT_THAT(source, IsOk());
  std::shared_ptr<server::LiveVideo> live = (*source)->live();
  ASSERT_NE(live, nullptr);
  EXPECT_EQ((*source)->size(), -1);
  auto worker = Connect("w1");
  const v1::AssignTask task = worker->link.Assigns()[0];
  EXPECT_TRUE(task.job().progressive());
  const int frames = task.job().num_frames();
  ASSERT_THAT(worker->Send(Progress(task, 2)), IsOk());  // the last denoising step
  v1::WorkerMessage decoding = Progress(task, 0);
  decoding.mutable_progress()->set_stage(v1::STAGE_DECODING_VIDEO);  // denoising ended
  ASSERT_THAT(worker->Send(decoding), IsOk());
  const std::vector<std::string> pieces =
      TinyFragmentedMp4({1, 4, frames - 5}, task.job().width_pixels(), task.job().height_pixels());
  SendChunks(*worker, task, pieces[0].substr(0, pieces[0].size() - 3), 0, 50);
  EXPECT_EQ(live->size(), 0);  // its mdat is not whole yet
  SendChunks(*worker, task, pieces[0].substr(pieces[0].size() - 3), pieces[0].size() - 3, 50);
  EXPECT_EQ(live->size(), static_cast<int64_t>(pieces[0].size()));
  EXPECT_EQ(live->ReadAt(0, 1 << 20).data, pieces[0]);
  EXPECT_FALSE(live->ended());
  SendChunks(*worker, task, pieces[1] + pieces[2], pieces[0].size(), 7);
  const std::string file = pieces[0] + pieces[1] + pieces[2];
  EXPECT_EQ(live->size(), static_cast<int64_t>(file.size()));
  v1::WorkerMessage result;
  result.mutable_result()->set_task_id(task.task_id());
  result.mutable_result()->set_attempt(task.attempt());
  result.mutable_result()->set_ok(true);
  result.mutable_result()->set_video_bytes(static_cast<int64_t>(file.size()));
  ASSERT_THAT(worker->Send(result), IsOk());
  ASSERT_EQ(StateOf(job->job_id()), v1::JOB_STATE_SUCCEEDED);
  const server::LiveVideo::Read end = live->ReadAt(0, 1 << 20);
  EXPECT_TRUE(end.ended);
  EXPECT_THAT(end.status, IsOk());
  EXPECT_EQ(end.total, static_cast<int64_t>(file.size()));
  EXPECT_EQ(end.data, file);
  // After the end: the stored file, whole.
  auto stored = scheduler_->OpenVideo(job->job_id());
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ((*stored)->live(), nullptr);
  EXPECT_EQ(*(*stored)->Read(1 << 20), file);
  EXPECT_NE(registry_->Render().find("turbovid_progressive_first_bytes_seconds_count{model=\"tiny-"
                                     "t2v\",node_class=\"cpu\"} 1"),
            std::string::npos);
}

// A stream that fails the check is never relayed: the attempt is cancelled on the worker and
// rejected (requeued), its readers end with ABORTED; a cancel ends them with CANCELLED at once.
TEST_F(SchedulerTest, ProgressiveStreamsThatFailTheCheckOrAreCancelledEndTheirReaders) {
  config_.check_worker_results = true;
  config_.max_attempts = 3;
  Open();
  v1::SubmitVideoRequest request = Request();
  request.set_progressive(true);
  auto job = scheduler_->SubmitVideo(request);
  ASSERT_THAT(job, IsOk());
  auto worker = Connect("w1");
  v1::AssignTask task = worker->link.Assigns()[0];
  const int width = task.job().width_pixels(), height = task.job().height_pixels();
  auto source = scheduler_->OpenVideo(job->job_id());
  ASSERT_THAT(source, IsOk());
  std::shared_ptr<server::LiveVideo> live = (*source)->live();
  // Wrong size in the first fragment.
  SendChunks(*worker, task, TinyFragmentedMp4({1}, width * 2, height)[0], 0, 1 << 20);
  EXPECT_EQ(live->size(), 0);
  server::LiveVideo::Read r = live->ReadAt(0, 1 << 20);
  EXPECT_TRUE(r.ended);
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kAborted));
  EXPECT_TRUE(worker->link.sent.back().has_cancel());
  EXPECT_NE(scheduler_->GetJob(job->job_id())->error().find("streamed video is"), std::string::npos)
      << scheduler_->GetJob(job->job_id())->error();
  // Next attempt (its worker's next message places it again): more frames than the job has.
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat();
  ASSERT_THAT(worker->Send(heartbeat), IsOk());
  ASSERT_EQ(worker->link.Assigns().size(), 2u);
  task = worker->link.Assigns()[1];
  live = (*scheduler_->OpenVideo(job->job_id()))->live();
  const int frames = task.job().num_frames();
  const auto too_many = TinyFragmentedMp4({1, frames}, width, height);
  SendChunks(*worker, task, too_many[0], 0, 1 << 20);
  EXPECT_EQ(live->size(), static_cast<int64_t>(too_many[0].size()));
  SendChunks(*worker, task, too_many[1], too_many[0].size(), 1 << 20);
  EXPECT_EQ(live->size(), static_cast<int64_t>(too_many[0].size()));
  EXPECT_THAT(live->ReadAt(0, 1).status, StatusIs(absl::StatusCode::kAborted));
  EXPECT_NE(scheduler_->GetJob(job->job_id())->error().find("frames so far"), std::string::npos);
  // Third attempt: cancelled while streaming.
  ASSERT_THAT(worker->Send(heartbeat), IsOk());
  ASSERT_EQ(worker->link.Assigns().size(), 3u);
  task = worker->link.Assigns()[2];
  live = (*scheduler_->OpenVideo(job->job_id()))->live();
  SendChunks(*worker, task, TinyFragmentedMp4({1}, width, height)[0], 0, 1 << 20);
  EXPECT_GT(live->size(), 0);
  ASSERT_THAT(scheduler_->CancelJob(job->job_id()), IsOk());
  EXPECT_THAT(live->ReadAt(0, 1).status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT((*scheduler_->OpenVideo(job->job_id()))->live()->ReadAt(0, 1).status,
              StatusIs(absl::StatusCode::kCancelled));
  const std::string metrics = registry_->Render();
  EXPECT_NE(metrics.find("turbovid_results_rejected_total{reason=\"size\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("turbovid_results_rejected_total{reason=\"frames\"} 1"),
            std::string::npos);
}

TEST_F(SchedulerTest, RetentionRemovesFinishedJobsAndTheirVideosOnly) {
  config_.retention.finished_job_ttl_seconds = 100;
  Open();
  auto done = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(done, IsOk());
  auto worker = Connect("w1");
  Finish(*worker, worker->link.Assigns()[0], "fake-mp4-bytes");
  ASSERT_EQ(StateOf(done->job_id()), v1::JOB_STATE_SUCCEEDED);
  auto running = scheduler_->SubmitVideo(Request());  // assigned to w1, never finishes
  ASSERT_THAT(running, IsOk());
  auto cancelled = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(cancelled, IsOk());
  ASSERT_THAT(scheduler_->CancelJob(cancelled->job_id()), IsOk());
  auto queued = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(queued, IsOk());
  const std::string video = config_.artifact_dir + "/" + done->job_id() + ".mp4";
  ASSERT_TRUE(std::filesystem::exists(video));
  scheduler_->CollectMetrics();
  EXPECT_NE(registry_->Render().find("turbovid_artifact_store_bytes 14\n"), std::string::npos);

  const double now = WallSeconds();
  EXPECT_EQ(scheduler_->ExpireFinished(now + 50), 0);  // not old enough
  EXPECT_EQ(scheduler_->ExpireFinished(now + 1e6), 2);
  EXPECT_THAT(scheduler_->GetJob(done->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(scheduler_->OpenVideo(done->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(scheduler_->GetJob(cancelled->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(scheduler_->CancelJob(cancelled->job_id()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(video));
  EXPECT_EQ(StateOf(running->job_id()), v1::JOB_STATE_ASSIGNED);  // never expired
  EXPECT_EQ(StateOf(queued->job_id()), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(scheduler_->ListJobs(v1::ListJobsRequest())->jobs_size(), 2);
  scheduler_->CollectMetrics();
  const std::string metrics = registry_->Render();
  EXPECT_NE(metrics.find("turbovid_jobs_expired_total{state=\"succeeded\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("turbovid_jobs_expired_total{state=\"cancelled\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("turbovid_artifact_store_bytes 0\n"), std::string::npos);
  // 0 = keep forever.
  config_.retention.finished_job_ttl_seconds = 0;
  Open();
  EXPECT_EQ(scheduler_->ExpireFinished(now + 1e9), 0);
}

TEST_F(SchedulerTest, FullArtifactStoreRefusesSubmitsButStoresResults) {
  config_.retention.artifact_store_max_bytes = 10;
  config_.retention.finished_job_ttl_seconds = 100;
  Open();
  auto first = scheduler_->SubmitVideo(Request());
  auto second = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  auto worker = Connect("w1");
  Finish(*worker, worker->link.Assigns()[0], "fake-mp4-bytes");  // 14 bytes >= 10
  const auto refused = scheduler_->SubmitVideo(Request());
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(refused.status().message().find("retention.artifact_store_max_bytes is 10"),
            std::string::npos)
      << refused.status();
  // The job admitted before still stores its video.
  ASSERT_EQ(worker->link.Assigns().size(), 2u);
  Finish(*worker, worker->link.Assigns()[1], "second-video");
  EXPECT_EQ(StateOf(second->job_id()), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(*(*scheduler_->OpenVideo(second->job_id()))->Read(100), "second-video");
  // The store usage is counted again at start (a restart keeps refusing).
  Open();
  EXPECT_THAT(scheduler_->SubmitVideo(Request()), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(scheduler_->ExpireFinished(WallSeconds() + 1000), 2);
  EXPECT_THAT(scheduler_->SubmitVideo(Request()), IsOk());
}

TEST_F(SchedulerTest, GpuSecondsPerDayPerTenantSurviveARestart) {
  config_.admission.max_queue_length = 10;
  QuotaLimits alice = config_.quotas;
  alice.gpu_seconds_per_day = 1e-9;  // any run uses it up
  config_.quotas.tenants["alice"] = alice;
  Open();
  auto as = [](const std::string& tenant) {
    v1::SubmitVideoRequest r = Request();
    r.set_tenant(tenant);
    return r;
  };
  auto job = scheduler_->SubmitVideo(as("alice"));
  ASSERT_THAT(job, IsOk());
  auto worker = Connect("w1");
  usleep(2000);
  Finish(*worker, worker->link.Assigns()[0], "fake-mp4-bytes");
  ASSERT_EQ(StateOf(job->job_id()), v1::JOB_STATE_SUCCEEDED);
  auto refused = scheduler_->SubmitVideo(as("alice"));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(refused.status().message().find("gpu_seconds_per_day"), std::string::npos);
  EXPECT_NE(refused.status().message().find("; retry after 86"), std::string::npos)
      << refused.status().message();
  EXPECT_THAT(scheduler_->SubmitVideo(as("bob")), IsOk());  // the defaults: unlimited
  scheduler_->CollectMetrics();
  std::string metrics = registry_->Render();
  EXPECT_NE(metrics.find("turbovid_quota_refusals_total{reason=\"gpu_seconds\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("turbovid_tenant_gpu_seconds{tenant=\"alice\"}"), std::string::npos);
  // The ledger comes back from the job store.
  worker.reset();
  Open();
  EXPECT_THAT(scheduler_->SubmitVideo(as("alice")), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(SchedulerTest, ResultsThatAreNotTheJobsVideoAreRejected) {
  config_.check_worker_results = true;
  config_.max_attempts = 3;
  Open();
  auto job = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(job, IsOk());
  auto worker = Connect("w1");
  v1::AssignTask task = worker->link.Assigns()[0];
  const int frames = task.job().num_frames();
  const int width = task.job().width_pixels();
  const int height = task.job().height_pixels();
  // Garbage: the attempt fails, the job goes back to the queue (and to w1 again).
  Finish(*worker, task, "not an mp4 at all");
  auto again = scheduler_->GetJob(job->job_id());
  EXPECT_NE(again->error().find("worker w1: uploaded video is not a valid MP4"), std::string::npos)
      << again->error();
  EXPECT_FALSE(std::filesystem::exists(config_.artifact_dir + "/" + job->job_id() + ".mp4"));
  ASSERT_EQ(worker->link.Assigns().size(), 2u);
  // Wrong frame count.
  Finish(*worker, worker->link.Assigns()[1], TinyMp4(frames + 4, width, height));
  EXPECT_NE(scheduler_->GetJob(job->job_id())->error().find(
                absl::StrCat("has ", frames + 4, " frames, the job asked for ", frames)),
            std::string::npos);
  ASSERT_EQ(worker->link.Assigns().size(), 3u);
  // Wrong size on the last attempt: FAILED with the check's error, no video.
  Finish(*worker, worker->link.Assigns()[2], TinyMp4(frames, width * 2, height));
  auto failed = scheduler_->GetJob(job->job_id());
  EXPECT_EQ(failed->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed->error(),
            absl::StrCat("result rejected: worker w1: uploaded video is ", width * 2, "x", height,
                         ", the job renders at ", width, "x", height));
  EXPECT_THAT(scheduler_->OpenVideo(job->job_id()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  const std::string metrics = registry_->Render();
  for (const char* reason : {"unparseable", "frames", "size"}) {
    EXPECT_NE(metrics.find(absl::StrCat("turbovid_results_rejected_total{reason=\"", reason,
                                        "\"} 1")),
              std::string::npos)
        << reason;
  }
  // The job's own video is accepted.
  auto good = scheduler_->SubmitVideo(Request());
  ASSERT_THAT(good, IsOk());
  ASSERT_EQ(worker->link.Assigns().size(), 4u);
  const std::string mp4 = TinyMp4(frames, width, height);
  Finish(*worker, worker->link.Assigns()[3], mp4);
  EXPECT_EQ(StateOf(good->job_id()), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(scheduler_->GetJob(good->job_id())->video_bytes(), static_cast<int64_t>(mp4.size()));
}

}  // namespace
}  // namespace turbovid::scheduler
