// VideoClient: synchronous stubs with deadlines, bounded retries and resumable watches.
#include "tools/video_client.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/limits.h"

namespace turbovid::tools {
namespace {

bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

std::string StripPrefix(const std::string& name, const std::string& prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::string StateName(v1::JobState state) {
  return StripPrefix(v1::JobState_Name(state), "JOB_STATE_");
}

std::string StageName(v1::Stage stage) { return StripPrefix(v1::Stage_Name(stage), "STAGE_"); }

bool IsFinal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string RandomRequestId() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
  return absl::StrFormat("%016x%016x", gen(), gen());
}

VideoClient::VideoClient(const std::string& address, absl::Duration rpc_timeout)
    : rpc_timeout_(rpc_timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(common::kGrpcMessageBytes));
  args.SetMaxSendMessageSize(static_cast<int>(common::kGrpcMessageBytes));
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (const char* ca = std::getenv("TURBOVID_CA_CERT"); ca != nullptr && *ca != '\0') {
    std::ifstream in(ca, std::ios::binary);
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    credentials = grpc::SslCredentials(ssl);  // an unreadable file fails every call's handshake
  }
  if (const char* key = std::getenv("TURBOVID_API_KEY")) api_key_ = key;
  channel_ = grpc::CreateCustomChannel(address, credentials, args);
  stub_ = v1::VideoService::NewStub(channel_);
}

void VideoClient::Authorize(grpc::ClientContext* context) const {
  if (!api_key_.empty()) context->AddMetadata("authorization", "Bearer " + api_key_);
}

void VideoClient::SetDeadline(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
  Authorize(context);
}

absl::StatusOr<v1::Job> VideoClient::Submit(const v1::SubmitVideoRequest& request,
                                            absl::Duration retry_for) {
  absl::Time give_up = absl::Now() + retry_for;
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    grpc::ClientContext context;
    SetDeadline(&context);
    context.set_wait_for_ready(true);
    v1::SubmitVideoResponse response;
    absl::Status s = FromGrpc(stub_->SubmitVideo(&context, request, &response));
    if (s.ok()) return response.job();
    if (!Retryable(s) || request.client_request_id().empty() || absl::Now() + backoff > give_up) {
      return s;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

absl::StatusOr<v1::Job> VideoClient::Get(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  absl::Status s = FromGrpc(stub_->GetJob(&context, request, &job));
  if (!s.ok()) return s;
  return job;
}

absl::StatusOr<v1::Job> VideoClient::Cancel(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  absl::Status s = FromGrpc(stub_->CancelJob(&context, request, &job));
  if (!s.ok()) return s;
  return job;
}

absl::StatusOr<v1::ListJobsResponse> VideoClient::List(const v1::ListJobsRequest& request) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ListJobsResponse response;
  absl::Status s = FromGrpc(stub_->ListJobs(&context, request, &response));
  if (!s.ok()) return s;
  return response;
}

absl::Status VideoClient::Delete(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::DeleteJobRequest request;
  request.set_job_id(job_id);
  v1::DeleteJobResponse response;
  return FromGrpc(stub_->DeleteJob(&context, request, &response));
}

absl::StatusOr<v1::ListModelsResponse> VideoClient::ListModels() {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ListModelsResponse response;
  absl::Status s = FromGrpc(stub_->ListModels(&context, v1::ListModelsRequest(), &response));
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::ListWorkersResponse> VideoClient::ListWorkers() {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ListWorkersResponse response;
  absl::Status s = FromGrpc(stub_->ListWorkers(&context, v1::ListWorkersRequest(), &response));
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::GetFleetResponse> VideoClient::GetFleet() {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::GetFleetResponse response;
  absl::Status s = FromGrpc(
      v1::FleetService::NewStub(channel_)->GetFleet(&context, v1::GetFleetRequest(), &response));
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::Job> VideoClient::Watch(const std::string& job_id,
                                           const std::function<void(const v1::Job&)>& on_update,
                                           absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(100);
  absl::Status last = absl::DeadlineExceededError(
      absl::StrCat("job ", job_id, " did not finish within ", absl::FormatDuration(timeout)));
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    context.set_wait_for_ready(true);
    Authorize(&context);
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    std::unique_ptr<grpc::ClientReader<v1::Job>> reader = stub_->WatchJob(&context, request);
    v1::Job job;
    bool any = false;
    while (reader->Read(&job)) {
      any = true;
      on_update(job);
      if (IsFinal(job.state())) {
        context.TryCancel();
        reader->Finish().ok();
        return job;
      }
    }
    absl::Status s = FromGrpc(reader->Finish());
    if (!s.ok() && !Retryable(s)) return s;
    if (!s.ok()) last = s;
    // The stream ended without a final state (server restart or shutdown): look again.
    if (any) backoff = absl::Milliseconds(100);
    absl::SleepFor(std::min(backoff, std::max(absl::ZeroDuration(), deadline - absl::Now())));
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
  return last;
}

absl::StatusOr<std::string> VideoClient::DownloadBytes(const std::string& job_id) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_ * 4));
  Authorize(&context);
  v1::GetVideoRequest request;
  request.set_job_id(job_id);
  std::unique_ptr<grpc::ClientReader<v1::VideoChunk>> reader = stub_->GetVideo(&context, request);
  std::string data;
  v1::VideoChunk chunk;
  int64_t total = -1;
  while (reader->Read(&chunk)) {
    if (chunk.offset() != static_cast<int64_t>(data.size())) {
      context.TryCancel();
      reader->Finish().ok();
      return absl::DataLossError(
          absl::StrCat("video chunk at offset ", chunk.offset(), ", expected ", data.size()));
    }
    data += chunk.data();
    total = chunk.total_bytes();
  }
  absl::Status s = FromGrpc(reader->Finish());
  if (!s.ok()) return s;
  if (total >= 0 && total != static_cast<int64_t>(data.size())) {
    return absl::DataLossError(
        absl::StrCat("video has ", data.size(), " bytes, server announced ", total));
  }
  return data;
}

absl::StatusOr<int64_t> VideoClient::Download(const std::string& job_id, const std::string& path,
                                              absl::Duration retry_for) {
  const absl::Time give_up = absl::Now() + retry_for;
  absl::Duration backoff = absl::Milliseconds(100);
  absl::StatusOr<std::string> data = DownloadBytes(job_id);
  while (!data.ok() && Retryable(data.status()) && absl::Now() + backoff < give_up) {
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
    data = DownloadBytes(job_id);
  }
  if (!data.ok()) return data.status();
  const std::string part = path + ".part";
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  out.write(data->data(), static_cast<std::streamsize>(data->size()));
  out.close();
  if (!out || std::rename(part.c_str(), path.c_str()) != 0) {
    std::remove(part.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return static_cast<int64_t>(data->size());
}

}  // namespace turbovid::tools
