// Golden harness: case loading, comparisons, kind dispatch.
#include "engine/testing/golden.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "engine/backends/backends.h"
#include "engine/comm/in_process.h"
#include "engine/core/ops.h"

namespace turbovid::engine::golden {

absl::StatusOr<GoldenCase> GoldenCase::Load(const std::string& dir) {
  GoldenCase c;
  c.dir = dir;
  c.name = NameOf(dir);
  std::ifstream in(dir + "/case.json");
  if (!in) return absl::NotFoundError(absl::StrCat(dir, "/case.json: cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  TV_ASSIGN_OR_RETURN(c.json, Json::Parse(ss.str()));
  const std::string inputs = c.json.StringOr("inputs", "inputs.safetensors");
  const std::string expected = c.json.StringOr("expected", "expected.safetensors");
  TV_ASSIGN_OR_RETURN(c.inputs, io::ReadSafetensors(dir + "/" + inputs));
  TV_ASSIGN_OR_RETURN(c.expected, io::ReadSafetensors(dir + "/" + expected));
  return c;
}

std::string GoldenCase::NameOf(const std::string& dir) {
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

absl::StatusOr<io::WeightSet> GoldenCase::LoadWeights(const std::string& role) const {
  const Json* w = json.Find("weights");
  if (w == nullptr) return absl::InvalidArgumentError(absl::StrCat(dir, "/case.json: no 'weights'"));
  std::string file;
  if (w->is_string()) {
    file = w->str();
  } else {
    TV_ASSIGN_OR_RETURN(file, w->GetString(role));
  }
  return io::WeightSet::Load(dir + "/" + file);
}

absl::StatusOr<Tensor> GoldenCase::Input(const std::string& n) const {
  auto it = inputs.find(n);
  if (it == inputs.end()) return absl::InvalidArgumentError(absl::StrCat(dir, ": no input '", n, "'"));
  return it->second;
}

absl::StatusOr<Tensor> GoldenCase::Expected(const std::string& n) const {
  auto it = expected.find(n);
  if (it == expected.end()) return absl::InvalidArgumentError(absl::StrCat(dir, ": no expected '", n, "'"));
  return it->second;
}

const Json& GoldenCase::config() const {
  static const Json kEmpty;
  const Json* c = json.Find("config");
  return c ? *c : kEmpty;
}

double GoldenCase::Tolerance(bool fp32_backend) const {
  const Json* t = json.Find("tolerance");
  if (t == nullptr) return 0;
  if (fp32_backend && t->Find("max_rel_l2_fp32")) return t->NumberOr("max_rel_l2_fp32", 0);
  return t->NumberOr("max_rel_l2", 0);
}

absl::StatusOr<Tensor> ToTokenMajor(const Ops& ops, const Tensor& host, const char* kind) {
  if (host.rank() != 4 || host.dim(0) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " input ", host.Describe(), " is not [1, H, N, D]"));
  }
  TV_ASSIGN_OR_RETURN(Tensor t, ops.backend().Upload(host, ops.backend().compute_dtype()));
  TV_ASSIGN_OR_RETURN(t, t.Reshape({host.dim(1), host.dim(2), host.dim(3)}));
  return ops.Permute(t, {1, 0, 2});
}

double RelL2(const Tensor& a, const Tensor& b) {
  auto fa = ToF64(a);
  auto fb = ToF64(b);
  if (!fa.ok() || !fb.ok() || fa->numel() != fb->numel()) return INFINITY;
  double num = 0, den = 0;
  for (int64_t i = 0; i < fa->numel(); ++i) {
    double d = fa->data<double>()[i] - fb->data<double>()[i];
    num += d * d;
    den += fb->data<double>()[i] * fb->data<double>()[i];
  }
  if (den == 0) return num == 0 ? 0 : INFINITY;
  return std::sqrt(num / den);
}

void GoldenReport::Compare(const std::string& what, const Tensor& got, const Tensor& want, double tol) {
  if (got.shape() != want.shape()) {
    Fail(what, absl::StrCat("shape ", ShapeString(got.shape()), " != expected ", ShapeString(want.shape())));
    return;
  }
  double rel = RelL2(got, want);
  lines_.push_back(absl::StrFormat("%s rel_l2=%.3g tol=%.3g", what, rel, tol));
  double ratio = tol > 0 ? rel / tol : (rel == 0 ? 0 : INFINITY);
  if (!(ratio <= worst_ratio_) || worst_ratio_ < 0) {
    worst_ratio_ = std::isnan(ratio) ? INFINITY : ratio;
    worst_rel_l2_ = rel;
    worst_tol_ = tol;
  }
  if (!(rel <= tol)) failures_.push_back(absl::StrFormat("%s: rel_l2 %.3g > tol %.3g", what, rel, tol));
}

void GoldenReport::Exact(const std::string& what, const Tensor& got, const Tensor& want) {
  if (got.numel() != want.numel()) {
    Fail(what, absl::StrCat("shape ", ShapeString(got.shape()), " != expected ", ShapeString(want.shape())));
    return;
  }
  auto a = ToF64(got);
  auto b = ToF64(want);
  int64_t bad = 0;
  for (int64_t i = 0; i < a->numel(); ++i) bad += a->data<double>()[i] != b->data<double>()[i];
  lines_.push_back(absl::StrCat(what, " exact mismatches=", bad));
  if (bad != 0) Fail(what, absl::StrCat(bad, " of ", a->numel(), " elements differ"));
}

void GoldenReport::Close(const std::string& what, const Tensor& got, const Tensor& want, double abs_tol) {
  if (got.numel() != want.numel()) {
    Fail(what, absl::StrCat("shape ", ShapeString(got.shape()), " != expected ", ShapeString(want.shape())));
    return;
  }
  auto a = ToF64(got);
  auto b = ToF64(want);
  double worst = 0;
  for (int64_t i = 0; i < a->numel(); ++i) {
    worst = std::max(worst, std::abs(a->data<double>()[i] - b->data<double>()[i]));
  }
  lines_.push_back(absl::StrFormat("%s max_abs=%.3g tol=%.3g", what, worst, abs_tol));
  if (!(worst <= abs_tol)) Fail(what, absl::StrFormat("max |diff| %.3g > %.3g", worst, abs_tol));
}

void GoldenReport::RelClose(const std::string& what, const Tensor& got, const Tensor& want,
                            double rel_tol) {
  if (got.numel() != want.numel()) {
    Fail(what, absl::StrCat("shape ", ShapeString(got.shape()), " != expected ",
                            ShapeString(want.shape())));
    return;
  }
  auto a = ToF64(got);
  auto b = ToF64(want);
  double worst = 0;
  int64_t inexact = 0;
  for (int64_t i = 0; i < a->numel(); ++i) {
    const double x = a->data<double>()[i], y = b->data<double>()[i];
    inexact += x != y;
    worst = std::max(worst, y == 0 ? std::abs(x) : std::abs(x - y) / std::abs(y));
  }
  lines_.push_back(
      absl::StrFormat("%s max_rel=%.3g tol=%.3g inexact=%d", what, worst, rel_tol, inexact));
  if (!(worst <= rel_tol))
    Fail(what, absl::StrFormat("max relative diff %.3g > %.3g", worst, rel_tol));
}

void GoldenReport::Fail(const std::string& what, const std::string& why) {
  failures_.push_back(absl::StrCat(what, ": ", why));
}

absl::StatusOr<GoldenReport> RunCase(const std::string& dir, Backend& backend,
                                     const comm::ParallelGroups* parallel) {
  TV_ASSIGN_OR_RETURN(GoldenCase c, GoldenCase::Load(dir));
  c.parallel = parallel;
  TV_ASSIGN_OR_RETURN(std::string kind, c.json.GetString("kind"));
  GoldenReport report;
  absl::Status s;
  if (kind == "t5") {
    s = RunT5Case(c, backend, report);
  } else if (kind == "dit_t2v" || kind == "dit_i2v" || kind == "dit_sla_t2v") {
    s = RunDitCase(c, backend, report);
  } else if (kind == "sla") {
    s = RunSlaCase(c, backend, report);
  } else if (kind == "sagesla") {
    s = RunSageSlaCase(c, backend, report);
  } else if (kind == "qlinear") {
    s = RunQlinearCase(c, backend, report);
  } else if (kind == "vae_decode") {
    s = RunVaeDecodeCase(c, backend, report);
  } else if (kind == "vae_encode") {
    s = RunVaeEncodeCase(c, backend, report);
  } else if (kind == "rcm_t2v" || kind == "rcm_i2v_moe") {
    s = RunRcmCase(c, backend, report);
  } else if (kind == "pipeline_t2v") {
    s = RunPipelineCase(c, backend, report);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/case.json: unknown kind '", kind, "'"));
  }
  if (!s.ok()) report.Fail("run", std::string(s.message()));
  return report;
}

namespace {

void CollectDitHeads(const Json& j, std::vector<int>* heads) {
  if (!j.is_object()) return;
  if (j.Find("num_heads") != nullptr && j.Find("ffn_dim") != nullptr) {
    heads->push_back(static_cast<int>(j.IntOr("num_heads", 0)));
    return;
  }
  for (const auto& [key, child] : j.object()) CollectDitHeads(child, heads);
}

}  // namespace

std::vector<int> CaseDitHeads(const GoldenCase& c) {
  std::vector<int> heads;
  CollectDitHeads(c.config(), &heads);
  return heads;
}

absl::StatusOr<GoldenReport> RunCaseParallel(const std::string& dir,
                                             const comm::ParallelLayout& layout,
                                             const BackendFactory& make_backend) {
  std::vector<absl::StatusOr<GoldenReport>> reports(layout.world(),
                                                    absl::InternalError("rank did not run"));
  TV_RETURN_IF_ERROR(comm::RunInProcessRanks(
      layout.world(), [&](int rank, comm::Communicator& host) -> absl::Status {
        TV_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_backend(rank));
        TV_ASSIGN_OR_RETURN(std::unique_ptr<comm::Communicator> device,
                            MakeDeviceCommunicator(*backend, rank, host));
        TV_ASSIGN_OR_RETURN(auto groups, comm::ParallelGroups::Create(std::move(device), layout));
        reports[rank] = RunCase(dir, *backend, groups.get());
        // A rank whose case failed to run (its collectives left the others waiting) aborts.
        if (!reports[rank].ok()) return reports[rank].status();
        // Keep every rank until all are done with their collectives.
        return groups->world().Barrier();
      }));
  GoldenReport report = *reports[0];
  for (int r = 1; r < layout.world(); ++r) {
    for (const std::string& f : reports[r]->failures()) {
      report.Fail(absl::StrCat("rank ", r), f);
    }
  }
  return report;
}

}  // namespace turbovid::engine::golden
