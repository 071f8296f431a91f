// gRPC turbovid.v1.FleetService (callback API): one thin handler over a FleetBackend. Like
// ListWorkers, it needs a valid API key when authentication is on (docs/security.md).
#pragma once

#include "server/auth.h"
#include "server/backend.h"
#include "turbovid/v1/fleet_service.grpc.pb.h"

namespace turbovid::server {

class FleetServiceImpl final : public v1::FleetService::CallbackService {
 public:
  // `backend` and `auth` must outlive the service; `observer` may be empty; `auth` null = no
  // authentication (tests).
  FleetServiceImpl(FleetBackend* backend, RpcObserver observer, Authenticator* auth);

  grpc::ServerUnaryReactor* GetFleet(grpc::CallbackServerContext* context,
                                     const v1::GetFleetRequest* request,
                                     v1::GetFleetResponse* response) override;

 private:
  FleetBackend* backend_;
  RpcObserver observer_;
  Authenticator* auth_;
};

}  // namespace turbovid::server
