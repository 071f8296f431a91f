// Deadline and priority-class checks, in the order a client would fix them.
#include "scheduler/urgency.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace turbovid::scheduler {

absl::StatusOr<Urgency> ResolveUrgency(const turbovid::v1::SubmitVideoRequest& request,
                                       const PlacementConfig& placement, double now_unix) {
  const double relative = request.deadline_seconds();
  const double absolute = request.deadline_unix_seconds();
  const double max = placement.max_deadline_seconds;
  if (relative != 0 && absolute != 0) {
    return absl::InvalidArgumentError(
        "deadline_seconds: give deadline_seconds or deadline_unix_seconds, not both");
  }
  if (relative != 0 && !(relative > 0 && relative <= max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("deadline_seconds: ", relative, " is not in (0, ", max, "]"));
  }
  if (absolute != 0) {
    if (!std::isfinite(absolute) || absolute <= now_unix) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "deadline_unix_seconds: %.3f is not in the future (now %.3f)", absolute, now_unix));
    }
    if (absolute - now_unix > max) {
      return absl::InvalidArgumentError(
          absl::StrFormat("deadline_unix_seconds: %.3f is more than %g s after now (%.3f)",
                          absolute, max, now_unix));
    }
  }
  Urgency out;
  out.priority = request.priority();
  double class_deadline = 0;
  if (!request.priority_class().empty()) {
    auto cls = placement.priority_classes.find(request.priority_class());
    if (cls == placement.priority_classes.end()) {
      std::vector<std::string> names;
      for (const auto& [name, unused] : placement.priority_classes) names.push_back(name);
      return absl::InvalidArgumentError(
          absl::StrCat("priority_class: '", request.priority_class().substr(0, 64),
                       "' is not one of: ", absl::StrJoin(names, ", ")));
    }
    if (out.priority == 0) out.priority = cls->second.priority;
    class_deadline = cls->second.deadline_seconds;
  }
  if (absolute != 0) {
    out.deadline_unix_seconds = absolute;
  } else if (relative != 0) {
    out.deadline_unix_seconds = now_unix + relative;
  } else if (class_deadline > 0) {
    out.deadline_unix_seconds = now_unix + class_deadline;
  }
  return out;
}

void ApplyUrgency(const Urgency& urgency, turbovid::v1::SubmitVideoRequest* accepted) {
  accepted->set_priority(urgency.priority);
  accepted->set_deadline_unix_seconds(urgency.deadline_unix_seconds);
  accepted->clear_deadline_seconds();
}

}  // namespace turbovid::scheduler
