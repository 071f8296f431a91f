// The one place where absl::Status becomes grpc::Status (docs/design.md §8).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace turbovid::server {

// Codes map one to one; the message is cut at 1 KiB.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace turbovid::server
