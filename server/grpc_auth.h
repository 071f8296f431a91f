// The authorization metadata of a gRPC call (server/auth.h checks it).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string_view>

namespace turbovid::server {

// The value of the call's `authorization` metadata, "" when absent.
inline std::string_view AuthorizationMetadata(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace turbovid::server
