// Whole-job service time per (node class, parallel layout, model, variant, size, frames, steps):
// learned moving averages over a prior table (configs/service-times.yaml), plus the price per hour
// of each node class. Placement, the autoscaling signal and turbovid-fleetsim all estimate with
// this one model (docs/fleet.md). No gRPC, protobuf or SQLite here (tv_scheduler_core).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"

namespace turbovid::common {
class ConfigNode;
}  // namespace turbovid::common

namespace turbovid::scheduler {

// What a job renders, as far as its running time is concerned.
struct JobShape {
  std::string model_id;
  std::string variant;
  int width_pixels = 0;
  int height_pixels = 0;
  int num_frames = 0;
  int num_steps = 0;
};

// Latent tokens of a shape (Wan: 8x spatial, 4x temporal VAE stride, 2x2 patches).
double ShapeTokens(const JobShape& shape);

// How a worker (group) spreads one job over its GPUs: "1gpu", "tp2", "sp4", "tp2sp4", and
// "<n>gpu" for n GPUs without a tensor or sequence split (docs/parallelism.md §1).
std::string ParallelLayout(int gpu_count, int tensor_parallel_size, int sequence_parallel_size);

struct ServiceKey {
  std::string node_class;
  std::string layout = "1gpu";
  JobShape shape;
};

// Where an estimate comes from, best first.
enum class EstimateSource {
  kMeasured,         // finished jobs of exactly this key
  kPriorCalibrated,  // the prior table, times the measured/prior ratio of this family
  kPrior,            // the prior table at exactly this size and frame count
  kPriorScaled,      // the prior table's nearest size, scaled by latent tokens
  kMeasuredScaled,   // finished jobs of this family at other sizes, scaled by latent tokens
};
const char* EstimateSourceName(EstimateSource source);

struct ServiceEstimate {
  double seconds = 0;
  EstimateSource source = EstimateSource::kPrior;
  int64_t samples = 0;  // finished jobs behind a measured or calibrated figure
};

// One row of the prior table: total = fixed_seconds + num_steps * step_seconds at this shape.
struct PriorEntry {
  std::string node_class;
  std::string layout = "1gpu";
  std::string model_id;
  std::string variant;
  int width_pixels = 0;
  int height_pixels = 0;
  int num_frames = 0;
  double step_seconds = 0;   // one denoising step (CFG variants: both forwards)
  double fixed_seconds = 0;  // everything else: text encoder, VAE, MP4
  double load_seconds = -1;  // loading the model on a cold worker; < 0 = unknown
  std::string basis;         // "measured", "derived" or "estimate" (docs/fleet.md)
};

struct NodeClassPrice {
  double price_per_hour = 0;  // any currency, the same for every class
  std::string basis;          // where the figure comes from, free text
};

struct ServiceTimeTable {
  std::map<std::string, NodeClassPrice> node_classes;
  std::vector<PriorEntry> priors;
};

// configs/service-times.yaml. Errors name the file, line and key.
absl::StatusOr<ServiceTimeTable> LoadServiceTimeTable(const std::string& path);
absl::StatusOr<ServiceTimeTable> ParseServiceTimeTable(const common::ConfigNode& root);

class ServiceTimeModel {
 public:
  // `alpha`: weight of the newest measurement in every moving average, (0, 1].
  explicit ServiceTimeModel(double alpha, ServiceTimeTable table = {});

  // A finished job: `total_seconds` from assignment to result without the model load,
  // `denoise_seconds` the sum of its reported step times (0 when unknown).
  void RecordJob(const ServiceKey& key, double total_seconds, double denoise_seconds);
  // Loading (model, variant) on a cold worker of this class and layout.
  void RecordLoad(const ServiceKey& key, double seconds);

  std::optional<ServiceEstimate> Estimate(const ServiceKey& key) const;
  // The prior table alone (no measurement), for comparison.
  std::optional<double> PriorEstimate(const ServiceKey& key) const;
  std::optional<double> LoadSeconds(const ServiceKey& key) const;
  // 0 for a class without a price.
  double PricePerHour(const std::string& node_class) const;
  const ServiceTimeTable& table() const { return table_; }

  struct Measured {
    ServiceKey key;
    double seconds = 0;
    int64_t samples = 0;
  };
  // Every key with finished jobs, in key order.
  std::vector<Measured> MeasuredEntries() const;

  // Exact keys kept; beyond it only the per-family figures learn (sizes are client-chosen).
  static constexpr size_t kMaxExactKeys = 4096;

 private:
  using FamilyKey = std::tuple<std::string, std::string, std::string, std::string>;
  using ExactKey = std::tuple<FamilyKey, int, int, int, int>;
  struct Ewma {
    double value = 0;
    int64_t samples = 0;
  };
  struct Family {
    std::vector<size_t> priors;  // indices into table_.priors
    Ewma calibration;            // measured / prior
    Ewma fixed_per_token;        // seconds per latent token outside the denoising loop
    Ewma step_per_token;         // seconds per latent token per step
    Ewma load;
  };
  static FamilyKey FamilyOf(const ServiceKey& key);
  static ExactKey ExactOf(const ServiceKey& key);
  void Blend(Ewma* slot, double value) const;
  std::optional<std::pair<double, EstimateSource>> FromPriors(const Family& family,
                                                              const JobShape& shape) const;

  double alpha_;
  ServiceTimeTable table_;
  std::map<FamilyKey, Family> families_;
  std::map<ExactKey, Ewma> exact_;
};

}  // namespace turbovid::scheduler
