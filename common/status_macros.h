// Status propagation macros shared by every layer (absl::Status / absl::StatusOr).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TV_STATUS_CONCAT_INNER(a, b) a##b
#define TV_STATUS_CONCAT(a, b) TV_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` yields a non-OK absl::Status.
#define TV_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status tv_status_ = (expr);           \
    if (!tv_status_.ok()) return tv_status_;      \
  } while (0)

// `TV_ASSIGN_OR_RETURN(auto x, Foo());` unwraps a StatusOr or returns its error.
#define TV_ASSIGN_OR_RETURN(lhs, expr) \
  TV_ASSIGN_OR_RETURN_IMPL(TV_STATUS_CONCAT(tv_statusor_, __LINE__), lhs, expr)
#define TV_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(*tmp)

// Aborts on an invariant no input can break (our bug), printing file and line.
#define TV_CHECK(cond)                                                             \
  do {                                                                             \
    if (!(cond)) ::turbovid::common::CheckFailed(__FILE__, __LINE__, #cond);       \
  } while (0)

namespace turbovid::common {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}  // namespace turbovid::common
