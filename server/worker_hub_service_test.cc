// The WorkerHub reactor over a real loopback gRPC server, with a write held in flight by HTTP/2
// flow control (the client does not read): cancel, close and server shutdown must all end the
// stream once, with OnClosed reached and no crash.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/limits.h"
#include "gtest/gtest.h"
#include "server/backend.h"
#include "server/grpc_server.h"
#include "turbovid/v1/worker_hub.grpc.pb.h"

namespace turbovid::server {
namespace {

// Each message is large enough that a few of them fill the flow-control windows of a client
// that reads nothing, so the scheduler's write stays in flight until the stream ends.
constexpr int kMessages = 4;
constexpr size_t kMessageBytes = 8 << 20;

class Backend final : public WorkerHubBackend {
 public:
  std::unique_ptr<WorkerSession> OpenSession(WorkerLink* link, const std::string&,
                                             const WorkerCredential&) override {
    std::lock_guard<std::mutex> lock(mu_);
    link_ = link;
    return std::make_unique<Session>(this);
  }

  // Queues kMessages large messages on the open stream (from the first worker message).
  void Flood() {
    v1::SchedulerMessage message;
    message.mutable_assign()->set_image(std::string(kMessageBytes, 'x'));
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < kMessages; ++i) link_->Send(message);
  }
  void CloseLink() {
    std::lock_guard<std::mutex> lock(mu_);
    if (link_ != nullptr) link_->Close(absl::InternalError("closed by the test"));
  }
  bool WaitClosed(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return closed_; });
  }
  bool WaitFlooded(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return flooded_; });
  }

 private:
  class Session final : public WorkerSession {
   public:
    explicit Session(Backend* backend) : backend_(backend) {}
    absl::Status OnMessage(const v1::WorkerMessage&) override {
      backend_->Flood();
      std::lock_guard<std::mutex> lock(backend_->mu_);
      backend_->flooded_ = true;
      backend_->cv_.notify_all();
      return absl::OkStatus();
    }
    void OnClosed() override {
      std::lock_guard<std::mutex> lock(backend_->mu_);
      backend_->link_ = nullptr;  // never used again after this returns
      backend_->closed_ = true;
      backend_->cv_.notify_all();
    }

   private:
    Backend* backend_;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  WorkerLink* link_ = nullptr;
  bool flooded_ = false;
  bool closed_ = false;
};

enum class Ending { kClientCancel, kServerClose, kServerShutdown };

class WorkerHubServiceTest : public ::testing::TestWithParam<Ending> {};

TEST_P(WorkerHubServiceTest, StreamEndsOnceWhileAWriteIsInFlight) {
  for (int round = 0; round < 3; ++round) {
    Backend backend;
    GrpcServerOptions options;
    options.listen_address = "127.0.0.1:0";
    auto server = GrpcServer::Start(options, nullptr, &backend, {});
    ASSERT_TRUE(server.ok()) << server.status();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(common::kGrpcMessageBytes));
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string((*server)->port()),
                                             grpc::InsecureChannelCredentials(), args);
    auto stub = v1::WorkerHub::NewStub(channel);
    grpc::ClientContext context;
    auto stream = stub->Connect(&context);
    v1::WorkerMessage hello;
    hello.mutable_heartbeat();
    ASSERT_TRUE(stream->Write(hello));
    ASSERT_TRUE(backend.WaitFlooded(std::chrono::seconds(10)));
    // Let the first write reach the transport and block on the client's window.
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * round));
    switch (GetParam()) {
      case Ending::kClientCancel:
        context.TryCancel();
        break;
      case Ending::kServerClose:
        backend.CloseLink();  // drains the queue first: the client must read
        break;
      case Ending::kServerShutdown:
        (*server)->Shutdown(0);
        break;
    }
    if (GetParam() == Ending::kServerClose) {
      v1::SchedulerMessage incoming;
      int read = 0;
      while (stream->Read(&incoming)) ++read;
      EXPECT_EQ(read, kMessages);
      EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INTERNAL);
    }
    EXPECT_TRUE(backend.WaitClosed(std::chrono::seconds(20))) << "OnDone never came";
    if (GetParam() != Ending::kServerClose) {
      v1::SchedulerMessage incoming;
      while (stream->Read(&incoming)) {
      }
      EXPECT_FALSE(stream->Finish().ok());
    }
    (*server)->Shutdown(0);
  }
}

INSTANTIATE_TEST_SUITE_P(Endings, WorkerHubServiceTest,
                         ::testing::Values(Ending::kClientCancel, Ending::kServerClose,
                                           Ending::kServerShutdown));

}  // namespace
}  // namespace turbovid::server
