// Golden runner for the 't5' kind: umT5 encoder on the case's ids against the upstream context.
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/models/t5.h"
#include "engine/testing/golden.h"

namespace turbovid::engine::golden {

absl::Status RunT5Case(const GoldenCase& c, Backend& b, GoldenReport& r) {
  TV_ASSIGN_OR_RETURN(T5Config config, T5Config::FromJson(c.config()));
  TV_ASSIGN_OR_RETURN(io::WeightSet weights, c.LoadWeights());
  TV_ASSIGN_OR_RETURN(std::unique_ptr<UmT5Encoder> model, UmT5Encoder::Load(config, weights, b));
  TV_ASSIGN_OR_RETURN(Tensor ids_t, c.Input("ids"));  // [L] I64
  if (ids_t.dtype() != DType::kI64 || ids_t.rank() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.dir, ": input 'ids' is ", ids_t.Describe(), ", want I64 [L]"));
  }
  std::vector<int64_t> ids(ids_t.data<int64_t>(), ids_t.data<int64_t>() + ids_t.numel());
  TV_ASSIGN_OR_RETURN(Tensor context, model->Encode(ids));  // [L, dim] F32
  TV_ASSIGN_OR_RETURN(Tensor want, c.Expected("context"));
  r.Compare("context", context, want, c.Tolerance(b.compute_dtype() == DType::kF32));
  return absl::OkStatus();
}

}  // namespace turbovid::engine::golden
