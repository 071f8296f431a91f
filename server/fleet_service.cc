// FleetService handler: check the deadline, ask the backend, convert the status once.
#include "server/fleet_service.h"

#include <chrono>
#include <utility>

#include "server/grpc_auth.h"
#include "server/status.h"

namespace turbovid::server {

FleetServiceImpl::FleetServiceImpl(FleetBackend* backend, RpcObserver observer, Authenticator* auth)
    : backend_(backend), observer_(std::move(observer)), auth_(auth) {}

grpc::ServerUnaryReactor* FleetServiceImpl::GetFleet(grpc::CallbackServerContext* context,
                                                     const v1::GetFleetRequest* /*request*/,
                                                     v1::GetFleetResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status status;
  if (context->deadline() < std::chrono::system_clock::now()) {
    status = absl::DeadlineExceededError("deadline passed before the request was handled");
  } else if (absl::StatusOr<Principal> caller =
                 auth_ == nullptr ? absl::StatusOr<Principal>(Principal{})
                                  : auth_->AuthenticateClient(AuthorizationMetadata(*context));
             !caller.ok()) {
    status = caller.status();
  } else {
    absl::StatusOr<v1::GetFleetResponse> fleet = backend_->GetFleet();
    if (fleet.ok()) {
      *response = std::move(*fleet);
    } else {
      status = fleet.status();
    }
  }
  if (observer_) {
    observer_("GetFleet", status.code(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace turbovid::server
