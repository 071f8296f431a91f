// The scheduler behind the real gRPC server on a loopback port: a worker stream, a watch
// stream and the video stream go through the callback reactors of server/.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "server/grpc_server.h"
#include "turbovid/v1/video_service.grpc.pb.h"
#include "turbovid/v1/worker_hub.grpc.pb.h"

namespace turbovid::scheduler {
namespace {

namespace v1 = ::turbovid::v1;
using ::turbovid::common::testing::IsOk;

class GrpcLoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/tv_loopback_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.db_path = dir_ + "/jobs.db";
    config_.artifact_dir = dir_ + "/artifacts";
    config_.check_worker_results = false;  // placeholder bytes; the check has its own tests
    metrics_ = std::make_unique<SchedulerMetrics>(registry_);
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
    scheduler_->Start();
    server::GrpcServerOptions options;
    options.listen_address = "127.0.0.1:0";
    auto grpc_server = server::GrpcServer::Start(options, scheduler_.get(), scheduler_.get(), {});
    ASSERT_THAT(grpc_server, IsOk());
    server_ = std::move(*grpc_server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    videos_ = v1::VideoService::NewStub(channel_);
    hub_ = v1::WorkerHub::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) {
      scheduler_->BeginShutdown();
      server_->Shutdown(1);
    }
    server_.reset();
    scheduler_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  SchedulerConfig config_;
  common::metrics::Registry registry_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<server::GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoService::Stub> videos_;
  std::unique_ptr<v1::WorkerHub::Stub> hub_;
};

TEST_F(GrpcLoopbackTest, JobRunsThroughWorkerStreamWithWatchAndDownload) {
  grpc::ClientContext submit_ctx;
  v1::SubmitVideoRequest request;
  request.set_model_id("tiny-t2v");
  request.set_prompt("a red ball");
  v1::SubmitVideoResponse submitted;
  ASSERT_TRUE(videos_->SubmitVideo(&submit_ctx, request, &submitted).ok());
  const std::string job_id = submitted.job().job_id();

  std::vector<v1::Job> events;
  grpc::Status watch_status;
  std::thread watcher([&] {
    grpc::ClientContext ctx;
    v1::WatchJobRequest watch;
    watch.set_job_id(job_id);
    auto reader = videos_->WatchJob(&ctx, watch);
    v1::Job job;
    while (reader->Read(&job)) events.push_back(job);
    watch_status = reader->Finish();
  });

  grpc::ClientContext worker_ctx;
  auto stream = hub_->Connect(&worker_ctx);
  v1::WorkerMessage hello;
  hello.mutable_register_()->set_worker_id("loop-w");
  hello.mutable_register_()->set_node_class("cpu");
  auto* model = hello.mutable_register_()->add_models();
  model->set_model_id("tiny-t2v");
  model->set_variant("turbo");
  ASSERT_TRUE(stream->Write(hello));
  v1::SchedulerMessage reply;
  ASSERT_TRUE(stream->Read(&reply));
  ASSERT_TRUE(reply.has_registered());
  ASSERT_TRUE(stream->Read(&reply));
  ASSERT_TRUE(reply.has_assign());
  const v1::AssignTask task = reply.assign();
  EXPECT_EQ(task.task_id(), job_id);
  for (int step = 1; step <= 2; ++step) {
    v1::WorkerMessage progress;
    progress.mutable_progress()->set_task_id(job_id);
    progress.mutable_progress()->set_attempt(task.attempt());
    progress.mutable_progress()->set_stage(v1::STAGE_DENOISING);
    progress.mutable_progress()->set_step(step);
    progress.mutable_progress()->set_num_steps(2);
    ASSERT_TRUE(stream->Write(progress));
  }
  const std::string video(2500000, 'v');  // three 1 MiB download chunks
  for (size_t off = 0; off < video.size(); off += 1 << 20) {
    v1::WorkerMessage chunk;
    chunk.mutable_chunk()->set_task_id(job_id);
    chunk.mutable_chunk()->set_attempt(task.attempt());
    chunk.mutable_chunk()->set_offset(static_cast<int64_t>(off));
    chunk.mutable_chunk()->set_data(video.substr(off, 1 << 20));
    ASSERT_TRUE(stream->Write(chunk));
  }
  v1::WorkerMessage result;
  result.mutable_result()->set_task_id(job_id);
  result.mutable_result()->set_attempt(task.attempt());
  result.mutable_result()->set_ok(true);
  result.mutable_result()->set_video_bytes(static_cast<int64_t>(video.size()));
  ASSERT_TRUE(stream->Write(result));
  watcher.join();
  EXPECT_TRUE(watch_status.ok()) << watch_status.error_message();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state(), v1::JOB_STATE_SUCCEEDED);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GE(events[i].step(), events[i - 1].step());
  }

  grpc::ClientContext video_ctx;
  v1::GetVideoRequest get;
  get.set_job_id(job_id);
  auto reader = videos_->GetVideo(&video_ctx, get);
  std::string downloaded;
  v1::VideoChunk chunk;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    EXPECT_EQ(chunk.offset(), static_cast<int64_t>(downloaded.size()));
    downloaded += chunk.data();
    ++chunks;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(chunks, 3);
  EXPECT_EQ(downloaded, video);

  // Closing the worker stream leaves the finished job alone.
  stream->WritesDone();
  grpc::Status end = stream->Finish();
  EXPECT_TRUE(end.ok()) << end.error_message();
}

TEST_F(GrpcLoopbackTest, ErrorsCarryCodesAndShutdownEndsWatches) {
  grpc::ClientContext ctx;
  v1::SubmitVideoRequest bad;
  bad.set_model_id("tiny-t2v");
  bad.set_prompt("p");
  bad.set_num_frames(80);
  v1::SubmitVideoResponse response;
  grpc::Status status = videos_->SubmitVideo(&ctx, bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "num_frames: 80 is not 4k+1");

  grpc::ClientContext get_ctx;
  v1::GetVideoRequest get;
  get.set_job_id("missing");
  v1::VideoChunk chunk;
  auto reader = videos_->GetVideo(&get_ctx, get);
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext submit_ctx;
  v1::SubmitVideoRequest good = bad;
  good.set_num_frames(0);
  ASSERT_TRUE(videos_->SubmitVideo(&submit_ctx, good, &response).ok());
  grpc::ClientContext watch_ctx;
  v1::WatchJobRequest watch;
  watch.set_job_id(response.job().job_id());
  auto watch_reader = videos_->WatchJob(&watch_ctx, watch);
  v1::Job job;
  ASSERT_TRUE(watch_reader->Read(&job));
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  scheduler_->BeginShutdown();
  EXPECT_FALSE(watch_reader->Read(&job));
  EXPECT_EQ(watch_reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  server_->Shutdown(1);
  server_.reset();
}

}  // namespace
}  // namespace turbovid::scheduler
