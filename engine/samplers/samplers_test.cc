// Sampler schedules against the spec's worked values, and exactness on a point-mass model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/core/phase_profile.h"
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

// The definition of DoubleToBf16: one rounding of the double to 8 significant bits via
// frexp/ldexp (slow, obviously right); bf16 subnormals go through the fp32 path.
float SlowDoubleToBf16(double v) {
  if (std::isnan(v) || v == 0 || std::isinf(v)) return static_cast<float>(v);
  int exp;
  const double m = std::frexp(v, &exp);
  const double out = std::ldexp(std::nearbyint(std::ldexp(m, 8)), exp - 8);
  if (std::abs(out) < 1.1754943508222875e-38) return RoundToBf16(static_cast<float>(v));
  return static_cast<float>(out);
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(DoubleToBf16Test, MatchesTheDefinitionBitForBit) {
  std::mt19937_64 rng(11);
  std::vector<double> values = {1.0,     -1.0,     1.00390625, 1.01171875, 255.5,
                                256.5,   3.0e38,   -3.4e38,    1.0e-38,    -2.0e-39,
                                1.0e-45, 5.0e-324, 1.5e300,    -1.5e-300};
  // Exact ties (the 45 dropped bits are 100…0) with even and odd kept mantissas, and carries
  // into the exponent (1.11111111… rounds up to 2).
  for (uint64_t mant = 0; mant < 256; ++mant) {
    for (uint64_t low : {uint64_t{1} << 44, (uint64_t{1} << 44) - 1, (uint64_t{1} << 44) + 1,
                         (uint64_t{1} << 45) - 1}) {
      const uint64_t bits = (uint64_t{1023} << 52) | (mant << 45 & ((uint64_t{1} << 52) - 1)) | low;
      double d;
      std::memcpy(&d, &bits, 8);
      values.push_back(d);
      values.push_back(-d * 0.001);
    }
  }
  std::normal_distribution<double> normal(0.0, 3.0);
  for (int i = 0; i < 200000; ++i) values.push_back(normal(rng));
  for (int i = 0; i < 20000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, 8);
    values.push_back(d);
  }
  int mismatches = 0;
  for (double v : values) {
    const float got = DoubleToBf16(v), want = SlowDoubleToBf16(v);
    if (std::isnan(want) ? !std::isnan(got) : Bits(got) != Bits(want)) {
      if (++mismatches < 5)
        ADD_FAILURE() << "DoubleToBf16(" << v << ") = " << got << ", want " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// The rCM update written as plainly as possible (one loop per operation, every step's noise
// drawn), against which the fused, parallel RcmSample must agree bit for bit.
Tensor PlainRcm(const Tensor& init, const RcmOptions& o, const RcmVelocityFn& velocity,
                const RcmNoiseFn& noise, std::vector<Tensor>* x_ins) {
  const RcmSchedule sched = MakeRcmSchedule(o.steps, o.sigma_max).value();
  const int64_t n = init.numel();
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<double>(init.data<float>()[i]) * sched.t[0];
  bool low = false;
  for (int step = 0; step < o.steps; ++step) {
    const double t_cur = sched.t[step], t_next = sched.t[step + 1];
    if (o.boundary > 0 && !low && t_cur < o.boundary) low = true;
    Tensor x_in = Tensor::Zeros(DType::kF32, init.shape());
    for (int64_t i = 0; i < n; ++i) x_in.data<float>()[i] = SlowDoubleToBf16(x[i]);
    x_ins->push_back(x_in);
    const Tensor v = velocity(x_in, sched.net_timesteps[step], low).value();
    if (o.ode) {
      for (int64_t i = 0; i < n; ++i)
        x[i] -= (t_cur - t_next) * static_cast<double>(v.data<float>()[i]);
      continue;
    }
    const Tensor eps = noise(step);
    for (int64_t i = 0; i < n; ++i) {
      const double x0 = x[i] - t_cur * static_cast<double>(v.data<float>()[i]);
      x[i] = (1.0 - t_next) * x0 + t_next * static_cast<double>(eps.data<float>()[i]);
    }
  }
  Tensor out = Tensor::Zeros(DType::kF32, init.shape());
  for (int64_t i = 0; i < n; ++i) out.data<float>()[i] = static_cast<float>(x[i]);
  return out;
}

TEST(RcmSampleTest, FusedParallelUpdateMatchesThePlainLoops) {
  const Shape shape = {4, 3, 40, 50};  // 24,000 values: several ParallelFor chunks
  const Tensor init = GaussianNoise(shape, 5, 0);
  // A velocity that depends on x, the step time and the position (any change shows).
  auto velocity = [](const Tensor& x, float t, bool low) -> absl::StatusOr<Tensor> {
    Tensor v = Tensor::Zeros(DType::kF32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      v.data<float>()[i] =
          0.9f * x.data<float>()[i] + 1e-3f * t * std::sin(0.01f * i) + (low ? 0.25f : 0.f);
    }
    return v;
  };
  for (const bool ode : {false, true}) {
    for (const int steps : {1, 2, 4}) {
      const RcmOptions o{.steps = steps, .sigma_max = 80, .ode = ode, .boundary = 0.95};
      int noise_calls = 0;
      auto noise = [&](int step) {
        ++noise_calls;
        return GaussianNoise(shape, 5, 1 + step);
      };
      std::vector<Tensor> want_x_in;
      const Tensor want = PlainRcm(init, o, velocity, noise, &want_x_in);
      noise_calls = 0;
      RcmTrace trace;
      absl::StatusOr<Tensor> got = RcmSample(init, o, velocity, noise, nullptr, &trace);
      ASSERT_TRUE(got.ok()) << got.status();
      // SDE: no draw after the last step (its noise weight t_next is 0).
      EXPECT_EQ(noise_calls, ode ? 0 : steps - 1);
      ASSERT_EQ(trace.x_in.size(), want_x_in.size());
      for (size_t s = 0; s < want_x_in.size(); ++s) {
        EXPECT_EQ(std::memcmp(trace.x_in[s].raw(), want_x_in[s].raw(), want.nbytes()), 0)
            << "x_in of step " << s << (ode ? " (ode)" : " (sde)");
      }
      int diff = 0;
      for (int64_t i = 0; i < want.numel(); ++i)
        diff += got->data<float>()[i] != want.data<float>()[i];
      EXPECT_EQ(diff, 0) << steps << " steps" << (ode ? " (ode)" : " (sde)");
    }
  }
}

TEST(RcmSampleTest, ProfileMarksEachPhase) {
  PhaseProfile profile;
  ScopedPhaseProfile scoped(&profile);
  const Tensor init = GaussianNoise({8}, 1, 0);
  auto out = RcmSample(
      init, RcmOptions{.steps = 3},
      [](const Tensor& x, float, bool) -> absl::StatusOr<Tensor> { return x.Clone(); },
      [](int step) { return GaussianNoise({8}, 1, 1 + step); }, nullptr);
  ASSERT_TRUE(out.ok());
  char buf[4096] = {};
  std::FILE* f = fmemopen(buf, sizeof buf - 1, "w");
  ASSERT_NE(f, nullptr);
  profile.Print(f, "t");
  std::fclose(f);
  const std::string table(buf);
  EXPECT_NE(table.find("3 calls  rcm: update + bf16 x_in"), std::string::npos) << table;
  EXPECT_NE(table.find("2 calls  rcm: step noise"), std::string::npos) << table;
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

TEST(NoiseStreamsTest, BackgroundDrawsEqualDirectOnes) {
  const Shape shape = {3, 70001};  // odd: the last pair is half used
  for (const bool background : {true, false}) {
    NoiseStreams streams(shape, 9, 3, background);
    for (int s : {0, 1, 2, 5}) {  // 5: beyond count, drawn on the caller's thread
      const Tensor got = streams.Get(s), want = GaussianNoise(shape, 9, s);
      EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << "stream " << s;
    }
  }
  // Destroyed with draws never read: stops and joins.
  NoiseStreams unused(shape, 9, 4, true);
}

}  // namespace
}  // namespace turbovid::engine
