// ToGrpcStatus: codes map one to one; long messages are cut at 1 KiB on a UTF-8 boundary.
#include "server/status.h"

#include <string>

#include "gtest/gtest.h"
#include "server/http_util.h"

namespace turbovid::server {
namespace {

// 429 answers carry Retry-After: the wait a quota names, rounded up, else one second.
TEST(StatusTest, RetryAfterFromTheRefusal) {
  EXPECT_EQ(RetryAfterSeconds(absl::ResourceExhaustedError(
                "tenant 'a': more than 2 submits per second (burst 4); retry after 0.25 s")),
            1);
  EXPECT_EQ(RetryAfterSeconds(absl::ResourceExhaustedError(
                "tenant 'a': 90.0 GPU-seconds used in the last 24 h, gpu_seconds_per_day is 60; "
                "retry after 3600.20 s")),
            3601);
  EXPECT_EQ(RetryAfterSeconds(absl::ResourceExhaustedError("queue of m is full (9 jobs)")), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::ResourceExhaustedError("x; retry after one finishes")), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::InvalidArgumentError("retry after 5 s")), 0);
  common::HttpResponse response;
  AddRetryAfter(absl::ResourceExhaustedError("retry after 2.5 s"), &response);
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers[0].first, "Retry-After");
  EXPECT_EQ(response.headers[0].second, "3");
  AddRetryAfter(absl::NotFoundError("no job"), &response);
  EXPECT_EQ(response.headers.size(), 1u);
}

TEST(StatusTest, MapsEveryCanonicalCode) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "msg");
    const grpc::Status converted = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(converted.error_code()), code);
  }
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("num_frames: 80 is not 4k+1")).error_message(),
            "num_frames: 80 is not 4k+1");
}

TEST(StatusTest, CutsLongMessages) {
  std::string message(1023, 'a');
  message += "\xc3\xa9\xc3\xa9";  // a two-byte character straddles the 1 KiB mark
  const grpc::Status converted = ToGrpcStatus(absl::InternalError(message));
  EXPECT_EQ(converted.error_message().size(), 1023u);
}

}  // namespace
}  // namespace turbovid::server
