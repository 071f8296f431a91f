// absl::StatusCode and grpc::StatusCode share the canonical numbering (google.rpc.Code).
#include "server/status.h"

#include <string>

namespace turbovid::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  constexpr size_t kMaxMessageBytes = 1024;
  std::string message(status.message());
  if (message.size() > kMaxMessageBytes) {
    // Cut on a UTF-8 boundary so the trailer stays valid text.
    size_t cut = kMaxMessageBytes;
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
    message.resize(cut);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

}  // namespace turbovid::server
