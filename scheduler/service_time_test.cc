// The service-time model: the prior table (parsing, errors, the checked-in table against the
// catalog and docs/benchmarks.md's figure), estimate precedence, scaling and calibration.
#include "scheduler/service_time.h"

#include "common/config.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "scheduler/model_catalog.h"

namespace turbovid::scheduler {
namespace {

using ::turbovid::common::ConfigNode;
using ::turbovid::common::testing::IsOk;
using ::turbovid::common::testing::StatusIs;

absl::StatusOr<ServiceTimeTable> Parse(const std::string& yaml) {
  absl::StatusOr<ConfigNode> root = ConfigNode::LoadString(yaml, "test.yaml");
  if (!root.ok()) return root.status();
  return ParseServiceTimeTable(*root);
}

constexpr char kTable[] = R"(
node_classes:
  h100: {price_per_hour: 3.6, basis: test}
  rtx5090: {price_per_hour: 0.36}
priors:
  - {node_class: h100, model: m, variant: turbo, width_pixels: 832, height_pixels: 480,
     frames: 81, step_seconds: 0.25, fixed_seconds: 1.0, load_seconds: 20, basis: measured}
  - {node_class: rtx5090, layout: tp2, model: m, variant: turbo, width_pixels: 832,
     height_pixels: 480, frames: 81, step_seconds: 1.0, fixed_seconds: 4.0, basis: estimate}
)";

ServiceKey Key(const std::string& node_class, int width, int height, int frames, int steps,
               const std::string& layout = "1gpu") {
  return ServiceKey{node_class, layout, JobShape{"m", "turbo", width, height, frames, steps}};
}

TEST(ServiceTimeTableTest, ParsesPricesAndPriors) {
  absl::StatusOr<ServiceTimeTable> table = Parse(kTable);
  ASSERT_THAT(table, IsOk());
  EXPECT_DOUBLE_EQ(table->node_classes.at("h100").price_per_hour, 3.6);
  ASSERT_EQ(table->priors.size(), 2u);
  EXPECT_EQ(table->priors[0].layout, "1gpu");
  EXPECT_EQ(table->priors[1].layout, "tp2");
  EXPECT_DOUBLE_EQ(table->priors[0].load_seconds, 20);
  EXPECT_DOUBLE_EQ(table->priors[1].load_seconds, -1);
}

TEST(ServiceTimeTableTest, RejectsBadEntries) {
  EXPECT_THAT(Parse("node_classes: {h100: {price: 1}}"),
              StatusIs(absl::StatusCode::kInvalidArgument));  // unknown key
  EXPECT_THAT(Parse("node_classes: {h100: {price_per_hour: -1}}"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto prior = [](const std::string& frames, const std::string& step, const std::string& basis,
                  const std::string& width) {
    return "  - {node_class: h100, model: m, variant: v, width_pixels: " + width +
           ", height_pixels: 480, frames: " + frames + ", step_seconds: " + step +
           ", fixed_seconds: 1, basis: " + basis + "}\n";
  };
  EXPECT_THAT(Parse("priors:\n" + prior("81", "1", "measured", "832")), IsOk());
  EXPECT_THAT(Parse("priors:\n" + prior("80", "1", "measured", "832")),
              StatusIs(absl::StatusCode::kInvalidArgument));  // not 4k+1
  EXPECT_THAT(Parse("priors:\n" + prior("81", "0", "measured", "832")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("priors:\n" + prior("81", "1", "guess", "832")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("priors:\n" + prior("81", "1", "measured", "830")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string twice =
      "priors:\n" + prior("81", "1", "measured", "832") + prior("81", "2", "estimate", "832");
  EXPECT_THAT(Parse(twice), StatusIs(absl::StatusCode::kInvalidArgument));  // duplicate
}

// The checked-in table: parses, names only catalog classes, models and variants whose class has
// a memory entry, and its measured H100 row reproduces docs/benchmarks.md's prompt -> MP4 time.
TEST(ServiceTimeTableTest, CheckedInTableMatchesCatalogAndBenchmarks) {
  absl::StatusOr<ServiceTimeTable> table = LoadServiceTimeTable(TV_SERVICE_TIMES_YAML);
  ASSERT_THAT(table, IsOk());
  absl::StatusOr<ModelCatalog> catalog = ModelCatalog::LoadFile(TV_MODELS_YAML);
  ASSERT_THAT(catalog, IsOk());
  for (const auto& [name, price] : table->node_classes) {
    EXPECT_EQ(catalog->NodeClasses().count(name), 1u) << name;
  }
  for (const PriorEntry& e : table->priors) {
    const ModelSpec* model = catalog->Find(e.model_id);
    ASSERT_NE(model, nullptr) << e.model_id;
    const VariantSpec* variant = model->FindVariant(e.variant);
    ASSERT_NE(variant, nullptr) << e.model_id << ":" << e.variant;
    EXPECT_EQ(variant->memory_bytes.count(e.node_class), 1u)
        << e.model_id << ":" << e.variant << " cannot run on " << e.node_class;
    EXPECT_EQ(table->node_classes.count(e.node_class), 1u) << e.node_class << " has no price";
    // A variant that needs a group there is never run by one GPU: a "1gpu" prior would be dead.
    auto gpus = variant->gpus.find(e.node_class);
    if (gpus != variant->gpus.end() && gpus->second > 1) {
      EXPECT_NE(e.layout, "1gpu") << e.model_id << ":" << e.variant << " on " << e.node_class;
    }
  }
  ServiceTimeModel model(0.3, *table);
  std::optional<ServiceEstimate> h100 = model.Estimate(
      ServiceKey{"h100", "1gpu", JobShape{"wan2.1-t2v-1.3b", "turbo", 832, 480, 81, 4}});
  ASSERT_TRUE(h100.has_value());
  EXPECT_NEAR(h100->seconds, 2.140, 1e-9);  // Pipeline::Generate, SLA, measured
  EXPECT_EQ(h100->source, EstimateSource::kPrior);
}

TEST(ServiceTimeModelTest, PriorAtItsShapeScalesWithStepsAndTokens) {
  ServiceTimeModel model(0.5, *Parse(kTable));
  EXPECT_DOUBLE_EQ(model.Estimate(Key("h100", 832, 480, 81, 4))->seconds, 1.0 + 4 * 0.25);
  EXPECT_DOUBLE_EQ(model.Estimate(Key("h100", 832, 480, 81, 2))->seconds, 1.0 + 2 * 0.25);
  // 41 frames: 11 latent frames instead of 21 at the same size.
  std::optional<ServiceEstimate> shorter = model.Estimate(Key("h100", 832, 480, 41, 4));
  ASSERT_TRUE(shorter.has_value());
  EXPECT_EQ(shorter->source, EstimateSource::kPriorScaled);
  EXPECT_NEAR(shorter->seconds, 2.0 * 11 / 21, 1e-12);
  // The layout is part of the key: the 5090 prior is for tp2 only.
  EXPECT_FALSE(model.Estimate(Key("rtx5090", 832, 480, 81, 4)).has_value());
  EXPECT_DOUBLE_EQ(model.Estimate(Key("rtx5090", 832, 480, 81, 4, "tp2"))->seconds, 8.0);
  EXPECT_FALSE(model.Estimate(Key("cpu", 832, 480, 81, 4)).has_value());
  EXPECT_DOUBLE_EQ(model.PricePerHour("rtx5090"), 0.36);
  EXPECT_DOUBLE_EQ(model.PricePerHour("cpu"), 0);
  EXPECT_DOUBLE_EQ(*model.LoadSeconds(Key("h100", 64, 64, 5, 1)), 20);
  EXPECT_FALSE(model.LoadSeconds(Key("rtx5090", 64, 64, 5, 1, "tp2")).has_value());
}

TEST(ServiceTimeModelTest, MeasuredJobsReplaceAndCalibrateThePrior) {
  ServiceTimeModel model(0.5, *Parse(kTable));
  // Prior 2.0 s; two jobs took 3.0 and 5.0 s: EWMA 4.0 at this key, ratio EWMA (1.5, 2.5) -> 2.0.
  model.RecordJob(Key("h100", 832, 480, 81, 4), 3.0, 1.5);
  model.RecordJob(Key("h100", 832, 480, 81, 4), 5.0, 2.5);
  std::optional<ServiceEstimate> exact = model.Estimate(Key("h100", 832, 480, 81, 4));
  EXPECT_EQ(exact->source, EstimateSource::kMeasured);
  EXPECT_DOUBLE_EQ(exact->seconds, 4.0);
  EXPECT_EQ(exact->samples, 2);
  // Another step count of the family: the prior (1.0 + 2 x 0.25 = 1.5) times the ratio 2.0.
  std::optional<ServiceEstimate> other = model.Estimate(Key("h100", 832, 480, 81, 2));
  EXPECT_EQ(other->source, EstimateSource::kPriorCalibrated);
  EXPECT_DOUBLE_EQ(other->seconds, 3.0);
  EXPECT_DOUBLE_EQ(*model.PriorEstimate(Key("h100", 832, 480, 81, 2)), 1.5);
  ASSERT_EQ(model.MeasuredEntries().size(), 1u);
  EXPECT_EQ(model.MeasuredEntries()[0].key.shape.num_steps, 4);
  model.RecordLoad(Key("h100", 832, 480, 81, 4), 40);
  EXPECT_DOUBLE_EQ(*model.LoadSeconds(Key("h100", 832, 480, 81, 4)), 40);  // measured beats prior
}

TEST(ServiceTimeModelTest, FamilyWithoutPriorScalesMeasuredRatesByTokens) {
  ServiceTimeModel model(0.5);
  // 64x64x5: 2 latent frames x 4 x 4 = 32 tokens; 2 steps took 0.6 s of 1.0 s in all.
  model.RecordJob(Key("cpu", 64, 64, 5, 2), 1.0, 0.6);
  // 128x64x5 (64 tokens), 4 steps: fixed 0.4/32 per token, step 0.3/32 per token per step.
  std::optional<ServiceEstimate> e = model.Estimate(Key("cpu", 128, 64, 5, 4));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->source, EstimateSource::kMeasuredScaled);
  EXPECT_NEAR(e->seconds, 64 * (0.4 / 32 + 4 * 0.3 / 32), 1e-12);
  // No step reports: the whole time scales with the steps.
  ServiceTimeModel no_steps(0.5);
  no_steps.RecordJob(Key("cpu", 64, 64, 5, 2), 1.0, 0);
  EXPECT_NEAR(no_steps.Estimate(Key("cpu", 64, 64, 5, 2))->seconds, 1.0, 1e-12);  // measured
  EXPECT_NEAR(no_steps.Estimate(Key("cpu", 64, 64, 5, 4))->seconds, 2.0, 1e-12);
  EXPECT_NEAR(no_steps.Estimate(Key("cpu", 64, 64, 9, 4))->seconds, 3.0, 1e-12);  // 3/2 tokens
  model.RecordJob(Key("cpu", 64, 64, 5, 2), -1, 0);                               // ignored
  EXPECT_EQ(model.MeasuredEntries()[0].samples, 1);
}

TEST(ServiceTimeModelTest, LayoutNames) {
  EXPECT_EQ(ParallelLayout(1, 1, 1), "1gpu");
  EXPECT_EQ(ParallelLayout(0, 0, 0), "1gpu");
  EXPECT_EQ(ParallelLayout(2, 2, 1), "tp2");
  EXPECT_EQ(ParallelLayout(8, 1, 8), "sp8");
  EXPECT_EQ(ParallelLayout(8, 2, 4), "tp2sp4");
  EXPECT_EQ(ParallelLayout(2, 1, 1), "2gpu");
}

}  // namespace
}  // namespace turbovid::scheduler
