// Golden-case harness: loads a case folder in the format of tests/data/golden/README.md
// (case.json + inputs, expected and weights safetensors), dispatches on `kind`, and collects
// comparisons.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/comm/parallel.h"
#include "engine/core/backend.h"
#include "engine/core/json.h"
#include "engine/core/ops.h"
#include "engine/io/safetensors.h"
#include "engine/io/weights.h"

namespace turbovid::engine::golden {

struct GoldenCase {
  std::string dir;
  std::string name;  // folder basename
  Json json;
  io::TensorMap inputs;
  io::TensorMap expected;
  // The rank's groups when the case runs tensor / sequence parallel (RunCaseParallel); the
  // runners pass it to every DiT they load. Null: one rank.
  const comm::ParallelGroups* parallel = nullptr;

  static absl::StatusOr<GoldenCase> Load(const std::string& dir);
  static std::string NameOf(const std::string& dir);  // folder basename, trailing '/' ignored
  // The weights file of the case (`role` selects an entry when "weights" is an object).
  absl::StatusOr<io::WeightSet> LoadWeights(const std::string& role = "") const;
  absl::StatusOr<Tensor> Input(const std::string& name) const;     // host, as stored
  absl::StatusOr<Tensor> Expected(const std::string& name) const;  // host, as stored
  const Json& config() const;
  // tolerance.max_rel_l2_fp32 for an fp32 backend when present, else tolerance.max_rel_l2.
  double Tolerance(bool fp32_backend) const;
};

// Relative L2 distance ||a - b|| / ||b|| in float64 over all elements (any numeric dtypes).
double RelL2(const Tensor& a, const Tensor& b);

class GoldenReport {
 public:
  // Compares `got` (host, any float dtype) to `want`; fails when shapes differ or rel_l2 > tol.
  void Compare(const std::string& what, const Tensor& got, const Tensor& want, double tol);
  // Element-exact comparison (integer tensors, block maps, int8 values).
  void Exact(const std::string& what, const Tensor& got, const Tensor& want);
  // |got - want| <= abs_tol elementwise.
  void Close(const std::string& what, const Tensor& got, const Tensor& want, double abs_tol);
  // |got - want| <= rel_tol·|want| elementwise (scales); the line counts inexact elements too.
  void RelClose(const std::string& what, const Tensor& got, const Tensor& want, double rel_tol);
  void Fail(const std::string& what, const std::string& why);

  bool pass() const { return failures_.empty(); }
  // The comparison with the largest rel_l2 / tol ratio.
  double worst_rel_l2() const { return worst_rel_l2_; }
  double worst_tol() const { return worst_tol_; }
  const std::vector<std::string>& failures() const { return failures_; }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> failures_;
  std::vector<std::string> lines_;
  double worst_ratio_ = -1;
  double worst_rel_l2_ = 0;
  double worst_tol_ = 0;
};

// Attention inputs [1, H, N, D] (host) → [N, H, D] on the backend in its compute dtype; `kind`
// names the case kind in the error.
absl::StatusOr<Tensor> ToTokenMajor(const Ops& ops, const Tensor& host, const char* kind);

// Runs one case folder on `backend` (as one rank of `parallel` when given).
absl::StatusOr<GoldenReport> RunCase(const std::string& dir, Backend& backend,
                                     const comm::ParallelGroups* parallel = nullptr);

// The head counts of the case's DiTs (config objects with num_heads and ffn_dim); empty for
// kinds without a DiT (t5, sla, vae_*, ...), whose runs a parallel layout does not change.
std::vector<int> CaseDitHeads(const GoldenCase& c);

using BackendFactory = std::function<absl::StatusOr<std::unique_ptr<Backend>>(int rank)>;
// Runs the case on every rank of `layout`: threads of this process joined by the in-process
// communicator, each with its own backend from make_backend(rank) and the device communicator
// of that backend (engine::MakeDeviceCommunicator). Returns rank 0's report, with every other
// rank's failures added under "rank N:".
absl::StatusOr<GoldenReport> RunCaseParallel(const std::string& dir,
                                             const comm::ParallelLayout& layout,
                                             const BackendFactory& make_backend);

// Per-kind runners (one file each).
absl::Status RunT5Case(const GoldenCase& c, Backend& b, GoldenReport& r);          // t5
absl::Status RunDitCase(const GoldenCase& c, Backend& b, GoldenReport& r);         // dit_t2v, dit_i2v, dit_sla_t2v
absl::Status RunSlaCase(const GoldenCase& c, Backend& b, GoldenReport& r);         // sla
absl::Status RunSageSlaCase(const GoldenCase& c, Backend& b, GoldenReport& r);     // sagesla
absl::Status RunQlinearCase(const GoldenCase& c, Backend& b, GoldenReport& r);     // qlinear
absl::Status RunVaeDecodeCase(const GoldenCase& c, Backend& b, GoldenReport& r);   // vae_decode
absl::Status RunVaeEncodeCase(const GoldenCase& c, Backend& b, GoldenReport& r);   // vae_encode
absl::Status RunRcmCase(const GoldenCase& c, Backend& b, GoldenReport& r);         // rcm_t2v, rcm_i2v_moe
absl::Status RunPipelineCase(const GoldenCase& c, Backend& b, GoldenReport& r);    // pipeline_t2v

}  // namespace turbovid::engine::golden
