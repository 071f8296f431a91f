// Sampler schedules against the spec's worked values, and exactness on a point-mass model.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/samplers/noise.h"
#include "engine/samplers/rcm.h"
#include "engine/samplers/unipc.h"

namespace turbovid::engine {
namespace {

TEST(RcmScheduleTest, MatchesSpecTable) {
  auto s = MakeRcmSchedule(4, 80);
  ASSERT_TRUE(s.ok());
  EXPECT_NEAR(s->t[0], 80.0 / 81.0, 1e-12);
  EXPECT_NEAR(s->t[1], 0.933781, 1e-6);
  EXPECT_NEAR(s->t[3], 0.608979, 1e-6);
  EXPECT_EQ(s->t[4], 0.0);
  EXPECT_EQ(s->net_timesteps, (std::vector<float>{988, 932, 852, 608}));
  auto i2v = MakeRcmSchedule(1, 200);
  ASSERT_TRUE(i2v.ok());
  EXPECT_EQ(i2v->net_timesteps[0], 996.f);
  EXPECT_FALSE(MakeRcmSchedule(5, 80).ok());
  EXPECT_FALSE(MakeRcmSchedule(0, 80).ok());
}

TEST(RcmSampleTest, ExpertSwitchAndOde) {
  Tensor noise = GaussianNoise({2, 3}, 7, 0);
  std::vector<bool> experts;
  RcmOptions opt{.steps = 4, .sigma_max = 200, .ode = true, .boundary = 0.9};
  // Velocity of a point mass at 0: v = x / t, so the ODE lands exactly on 0.
  std::vector<double> t = MakeRcmSchedule(4, 200)->t;
  int step = 0;
  auto out = RcmSample(
      noise, opt,
      [&](const Tensor& x, float, bool low) -> absl::StatusOr<Tensor> {
        experts.push_back(low);
        Tensor v = x.Clone();
        for (int i = 0; i < v.numel(); ++i) v.data<float>()[i] /= static_cast<float>(t[step]);
        ++step;
        return v;
      },
      nullptr, nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(experts, (std::vector<bool>{false, false, true, true}));
  for (int i = 0; i < out->numel(); ++i) EXPECT_NEAR(out->data<float>()[i], 0.f, 2e-2);
}

TEST(RcmSampleTest, CancellationStopsBetweenSteps) {
  Tensor noise = GaussianNoise({4}, 1, 0);
  int calls = 0;
  auto out = RcmSample(
      noise, RcmOptions{.steps = 4},
      [&](const Tensor& x, float, bool) -> absl::StatusOr<Tensor> {
        ++calls;
        return x.Clone();
      },
      [&](int) { return GaussianNoise({4}, 1, 5); },
      [&](int step) { return step == 1 ? absl::CancelledError("stop") : absl::OkStatus(); });
  EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
}

TEST(UniPcScheduleTest, MatchesSpecExamples) {
  auto s = MakeUniPcSchedule(50, 5.0);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(std::vector<int>(s->timesteps.begin(), s->timesteps.begin() + 10),
            (std::vector<int>{999, 995, 991, 987, 982, 978, 973, 968, 963, 957}));
  EXPECT_EQ(s->timesteps[49], 92);
  EXPECT_NEAR(s->sigma[0], 0.9997998, 1e-7);
  EXPECT_NEAR(s->sigma[49], 0.0925069, 1e-7);
  auto s40 = MakeUniPcSchedule(40, 12.0);
  EXPECT_EQ(s40->timesteps[39], 235);
  auto s3 = MakeUniPcSchedule(40, 3.0);
  EXPECT_EQ(s3->timesteps[39], 71);
}

TEST(UniPcSampleTest, PointMassIsRecoveredExactly) {
  Tensor noise = GaussianNoise({3, 5}, 3, 0);
  auto sched = MakeUniPcSchedule(8, 5.0);
  const float target = 0.75f;
  auto out = UniPcSample(
      noise, 8, 5.0,
      [&](const Tensor& x, int, int step) -> absl::StatusOr<Tensor> {
        Tensor v = x.Clone();
        const double sigma = sched->sigma[step];
        for (int i = 0; i < v.numel(); ++i) v.data<float>()[i] = static_cast<float>((x.data<float>()[i] - target) / sigma);
        return v;
      },
      nullptr);
  ASSERT_TRUE(out.ok());
  for (int i = 0; i < out->numel(); ++i) EXPECT_NEAR(out->data<float>()[i], target, 1e-4);
}

TEST(NoiseTest, SeededAndStandardNormal) {
  Tensor a = GaussianNoise({10000}, 42, 0);
  Tensor b = GaussianNoise({10000}, 42, 0);
  Tensor c = GaussianNoise({10000}, 42, 1);
  double mean = 0, var = 0;
  for (int i = 0; i < 10000; ++i) {
    EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
    mean += a.data<float>()[i];
  }
  mean /= 10000;
  for (int i = 0; i < 10000; ++i) var += (a.data<float>()[i] - mean) * (a.data<float>()[i] - mean);
  var /= 10000;
  EXPECT_NEAR(mean, 0, 0.05);
  EXPECT_NEAR(var, 1, 0.05);
  EXPECT_NE(a.data<float>()[0], c.data<float>()[0]);
}

}  // namespace
}  // namespace turbovid::engine
