// gRPC turbovid.v1.FleetService (callback API): one thin handler over a FleetBackend.
#pragma once

#include "server/backend.h"
#include "turbovid/v1/fleet_service.grpc.pb.h"

namespace turbovid::server {

class FleetServiceImpl final : public v1::FleetService::CallbackService {
 public:
  // `backend` must outlive the service; `observer` may be empty.
  FleetServiceImpl(FleetBackend* backend, RpcObserver observer);

  grpc::ServerUnaryReactor* GetFleet(grpc::CallbackServerContext* context,
                                     const v1::GetFleetRequest* request,
                                     v1::GetFleetResponse* response) override;

 private:
  FleetBackend* backend_;
  RpcObserver observer_;
};

}  // namespace turbovid::server
