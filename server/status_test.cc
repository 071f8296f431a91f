// ToGrpcStatus: codes map one to one; long messages are cut at 1 KiB on a UTF-8 boundary.
#include "server/status.h"

#include <string>

#include "gtest/gtest.h"

namespace turbovid::server {
namespace {

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
