// A submit's deadline and priority class (SubmitVideoRequest fields 20-22) resolved at admission:
// the absolute deadline and the queue priority the job keeps, or InvalidArgument naming the
// field (`deadline_seconds: -5 must be > 0`).
#pragma once

#include "absl/status/statusor.h"
#include "scheduler/config.h"
#include "turbovid/v1/video_service.pb.h"

namespace turbovid::scheduler {

struct Urgency {
  int priority = 0;                  // the queue priority the job gets
  double deadline_unix_seconds = 0;  // 0 = none
};

// `now_unix`: the submit's wall time. The request's own non-zero priority wins over its class's.
absl::StatusOr<Urgency> ResolveUrgency(const turbovid::v1::SubmitVideoRequest& request,
                                       const PlacementConfig& placement, double now_unix);

// Writes the resolved urgency into the accepted request (absolute deadline, relative one cleared).
void ApplyUrgency(const Urgency& urgency, turbovid::v1::SubmitVideoRequest* accepted);

}  // namespace turbovid::scheduler
