// Test-only GoogleTest matchers on absl::Status / absl::StatusOr codes (docs/design.md §13.1:
// assert on codes, not message text):  EXPECT_THAT(Submit(req),
// StatusIs(absl::StatusCode::kInvalidArgument));
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace turbovid::common::testing {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = ::turbovid::common::testing::GetStatus(arg);
  if (status.code() == code) return true;
  *result_listener << "which is " << status.ToString();
  return false;
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = ::turbovid::common::testing::GetStatus(arg);
  if (status.ok()) return true;
  *result_listener << "which is " << status.ToString();
  return false;
}

#define TV_ASSERT_OK(expr) ASSERT_THAT((expr), ::turbovid::common::testing::IsOk())
#define TV_EXPECT_OK(expr) EXPECT_THAT((expr), ::turbovid::common::testing::IsOk())

}  // namespace turbovid::common::testing
