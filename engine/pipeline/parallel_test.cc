// Same output whatever the layout (docs/parallelism.md §6): a tiny DiT forward (dense, SLA, with
// its probes, uneven token splits, int8 shards) and a whole tiny T2V pipeline on 1, 2 and 4 ranks
// in tensor, sequence and tensor x sequence parallel layouts (threads over the in-process
// communicator), against the single-rank result within fp32 noise; impossible layouts refused;
// cancellation stops every rank at the same step.
#include "engine/comm/parallel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/status_matchers.h"
#include "engine/comm/in_process.h"
#include "engine/core/quantize.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/models/dit.h"
#include "engine/pipeline/pipeline.h"
#include "engine/testing/tiny_checkpoint.h"

namespace turbovid::engine {
namespace {

using ::turbovid::common::testing::StatusIs;

// dim 64 = 4 heads of 16: splits over 1, 2 and 4 ranks; ffn 96 over 1, 2, 4.
DitConfig Config(int dim = 64, int ffn = 96) {
  DitConfig c;
  c.in_dim = 4;
  c.out_dim = 4;
  c.dim = dim;
  c.ffn_dim = ffn;
  c.num_heads = 4;
  c.num_layers = 2;
  c.freq_dim = 16;
  c.text_dim = 8;
  c.text_len = 6;
  return c;
}

Tensor Normal(const Shape& shape, std::mt19937& gen, float mean, float std) {
  std::normal_distribution<float> dist(mean, std);
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = RoundToBf16(dist(gen));
  return t;
}

// Trained-like magnitudes: norm gains 1 ± 0.1, linears 1/√fan_in, biases and tables 0.05.
io::WeightSet Weights(const DitConfig& c, bool int8) {
  std::mt19937 gen(11);
  io::WeightSet ws;
  ws.set_origin("parallel-test");
  for (const auto& [name, shape] : DitTensorShapes(c, /*sla=*/true)) {
    const bool norm = name.find("norm") != std::string::npos;
    const bool bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool table = name.find("modulation") != std::string::npos;
    const float std = norm              ? 0.1f
                      : (bias || table) ? 0.05f
                                        : 1.f / std::sqrt(static_cast<float>(shape.back()));
    Tensor t = Normal(shape, gen, norm ? 1.f : 0.f, std);
    const bool block_linear = name.rfind("blocks.", 0) == 0 && shape.size() == 2 &&
                              name.find("proj_l") == std::string::npos;
    if (int8 && block_linear) {
      Tensor q, s;
      EXPECT_TRUE(QuantizeBlockInt8(t, &q, &s).ok());
      const std::string prefix = name.substr(0, name.size() - 7);  // drop ".weight"
      EXPECT_TRUE(ws.Add(prefix + ".int8_weight", q, "test").ok());
      EXPECT_TRUE(ws.Add(prefix + ".scale", s, "test").ok());
    } else {
      EXPECT_TRUE(ws.Add(name, t, "test").ok());
    }
  }
  return ws;
}

struct Result {
  Tensor velocity;
  std::map<std::string, Tensor> probes;
};

struct Case {
  DitConfig config = Config();
  bool int8 = false;
  AttentionMode attention = AttentionMode::kDense;
  Shape x_shape = {4, 2, 4, 6};  // 2 x 2 x 3 = 12 tokens
  bool probes = false;
  bool allow_replicated_attention = false;
};

absl::StatusOr<Result> Forward(const Case& c, const comm::ParallelGroups* groups) {
  std::unique_ptr<Backend> be = MakeCpuBackend();
  io::WeightSet ws = Weights(c.config, c.int8);
  DitOptions options;
  options.parallel = groups;
  options.allow_replicated_attention = c.allow_replicated_attention;
  options.sla_block_q = 4;  // several blocks even on 12 tokens
  options.sla_block_k = 2;
  TV_ASSIGN_OR_RETURN(std::unique_ptr<WanDit> dit, WanDit::Load(c.config, ws, *be, options));
  std::mt19937 gen(3);
  const Tensor x = Normal(c.x_shape, gen, 0.f, 1.f);
  const Tensor context = Normal({5, c.config.text_dim}, gen, 0.f, 1.f);
  TV_ASSIGN_OR_RETURN(WanDit::Context ctx, dit->PrepareContext(context));
  DitForwardOptions attention;
  attention.attention = c.attention;
  attention.sla_topk = 0.5f;
  Result r;
  const TensorSink sink = [&r](const std::string& name, const Tensor& t) { r.probes[name] = t; };
  TV_ASSIGN_OR_RETURN(r.velocity,
                      dit->Forward(x, nullptr, 500, ctx, attention, c.probes ? &sink : nullptr));
  return r;
}

// Every rank's result for `layout`.
absl::StatusOr<std::vector<Result>> ForwardParallel(const Case& c, comm::ParallelLayout layout) {
  std::vector<Result> results(layout.world());
  TV_RETURN_IF_ERROR(comm::RunInProcessRanks(
      layout.world(), [&](int rank, comm::Communicator& world) -> absl::Status {
        TV_ASSIGN_OR_RETURN(std::unique_ptr<comm::Communicator> mine, world.Split(0, rank));
        TV_ASSIGN_OR_RETURN(auto groups, comm::ParallelGroups::Create(std::move(mine), layout));
        TV_ASSIGN_OR_RETURN(results[rank], Forward(c, groups.get()));
        return absl::OkStatus();
      }));
  return results;
}

double RelL2(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    const double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    num += d * d;
    den += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  return std::sqrt(num / den);
}

// {1, 1, true}: one rank that still runs every collective (how NCCL is checked on one GPU).
const std::vector<comm::ParallelLayout> kLayouts = {{2, 1}, {4, 1}, {1, 2}, {1, 4}, {2, 2},
                                                    {1, 1, true}};

// fp32 noise: the row-parallel sums and the sharded norm statistics round partial sums to fp32
// where one rank rounds once; everything else is the same arithmetic.
constexpr double kFp32Noise = 1e-5;

void ExpectSameOnEveryLayout(const Case& c, double tol = kFp32Noise,
                             const std::vector<comm::ParallelLayout>& layouts = kLayouts) {
  absl::StatusOr<Result> one = Forward(c, nullptr);
  ASSERT_TRUE(one.ok()) << one.status();
  for (const comm::ParallelLayout& layout : layouts) {
    SCOPED_TRACE(layout.ToString());
    absl::StatusOr<std::vector<Result>> ranks = ForwardParallel(c, layout);
    ASSERT_TRUE(ranks.ok()) << ranks.status();
    for (const Result& r : *ranks) {
      ASSERT_EQ(r.velocity.shape(), one->velocity.shape());
      EXPECT_LT(RelL2(r.velocity, one->velocity), tol);
      // Every rank holds the same bits (deterministic sums): the sampler state stays in step.
      EXPECT_EQ(std::memcmp(r.velocity.raw(), (*ranks)[0].velocity.raw(), r.velocity.nbytes()), 0);
      EXPECT_EQ(r.probes.size(), one->probes.size());
      for (const auto& [name, want] : one->probes) {
        auto it = r.probes.find(name);
        ASSERT_NE(it, r.probes.end()) << name;
        ASSERT_EQ(it->second.shape(), want.shape()) << name;
        if (want.dtype() == DType::kI8) {  // SLA block maps: exact
          EXPECT_EQ(std::memcmp(it->second.raw(), want.raw(), want.nbytes()), 0) << name;
        } else {
          EXPECT_LT(RelL2(it->second, want), tol) << name;
        }
      }
    }
  }
}

TEST(ParallelDit, DenseForwardMatchesOneRank) { ExpectSameOnEveryLayout(Case{}); }

TEST(ParallelDit, SlaForwardAndProbesMatchOneRank) {
  Case c;
  c.attention = AttentionMode::kSla;
  c.probes = true;
  ExpectSameOnEveryLayout(c);
}

TEST(ParallelDit, UnevenTokenSplit) {
  Case c;
  c.x_shape = {4, 1, 6, 6};  // 9 tokens: 5 + 4, 3 + 2 + 2 + 2
  c.attention = AttentionMode::kSla;
  ExpectSameOnEveryLayout(c);
}

TEST(ParallelDit, Int8ShardsOnTileEdges) {
  Case c;
  c.config = Config(/*dim=*/256, /*ffn=*/256);  // 4 heads of 64: shards of 128 at tp 2
  c.int8 = true;
  // W8A8 rounds each rank's partial product to bf16 before the sum, and sequence ranks
  // quantise their own rows' tiles: bf16-level noise, not fp32's.
  ExpectSameOnEveryLayout(c, 2e-2, {{2, 1}, {1, 2}, {2, 2}, {1, 1, true}});
}

// 2 heads on 4 ranks: refused, unless replicated attention is allowed; then exact, probes too.
TEST(ParallelDit, HeadsThatDoNotSplitRunReplicatedWhenAllowed) {
  Case c;
  c.config.num_heads = 2;
  c.attention = AttentionMode::kSla;
  c.probes = true;
  EXPECT_THAT(ForwardParallel(c, {4, 1}).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  c.allow_replicated_attention = true;
  ExpectSameOnEveryLayout(c);
}

TEST(ParallelDit, RefusesLayoutsTheModelCannotSplit) {
  Case c;
  // 4 heads over 3 ranks.
  absl::StatusOr<std::vector<Result>> r = ForwardParallel(c, {3, 1});
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(r.status().message().find("4 heads do not split"), std::string::npos) << r.status();
  // int8 shards that would cut the 128-wide scale tiles (dim 64 at tp 2: 32 columns each).
  c.int8 = true;
  r = ForwardParallel(c, {2, 1});
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Counts the collectives that reach a one-rank communicator (and its splits), then forwards.
class CountingCommunicator : public comm::Communicator {
 public:
  CountingCommunicator(std::unique_ptr<comm::Communicator> inner, std::map<std::string, int>* calls)
      : inner_(std::move(inner)), calls_(calls) {}
  std::string_view kind() const override { return inner_->kind(); }
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  absl::Status AllReduceSum(Tensor& x) override {
    ++(*calls_)["all_reduce"];
    return inner_->AllReduceSum(x);
  }
  absl::Status AllGatherV(const Tensor& in, Tensor& out,
                          const std::vector<int64_t>& counts) override {
    ++(*calls_)["all_gather"];
    return inner_->AllGatherV(in, out, counts);
  }
  absl::Status ReduceScatterSum(const Tensor& in, Tensor& out) override {
    ++(*calls_)["reduce_scatter"];
    return inner_->ReduceScatterSum(in, out);
  }
  absl::Status AllToAllV(const Tensor& in, const std::vector<int64_t>& send, Tensor& out,
                         const std::vector<int64_t>& recv) override {
    ++(*calls_)["all_to_all"];
    return inner_->AllToAllV(in, send, out, recv);
  }
  absl::Status Broadcast(Tensor& x, int root) override {
    ++(*calls_)["broadcast"];
    return inner_->Broadcast(x, root);
  }
  absl::Status Barrier() override { return inner_->Barrier(); }
  absl::StatusOr<std::unique_ptr<comm::Communicator>> Split(int color, int key) override {
    TV_ASSIGN_OR_RETURN(std::unique_ptr<comm::Communicator> c, inner_->Split(color, key));
    return std::make_unique<CountingCommunicator>(std::move(c), calls_);
  }
  void Abort() override { inner_->Abort(); }

 private:
  std::unique_ptr<comm::Communicator> inner_;
  std::map<std::string, int>* calls_;
};

// collectives_at_one_rank: a one-rank group runs the all-reduces (row-parallel O and FFN-down,
// the q/k norm statistics) and the Ulysses all-to-alls of every block; without it, none.
TEST(ParallelDit, OneRankRunsEveryCollectiveOnlyWhenAsked) {
  for (const bool at_one : {false, true}) {
    SCOPED_TRACE(at_one ? "collectives_at_one_rank" : "plain one-rank group");
    std::map<std::string, int> calls;
    std::vector<std::unique_ptr<comm::Communicator>> host = comm::MakeInProcessGroup(1);
    comm::ParallelLayout layout;
    layout.collectives_at_one_rank = at_one;
    absl::StatusOr<std::unique_ptr<comm::ParallelGroups>> groups = comm::ParallelGroups::Create(
        std::make_unique<CountingCommunicator>(std::move(host[0]), &calls), layout);
    ASSERT_TRUE(groups.ok()) << groups.status();
    Case c;
    c.attention = AttentionMode::kSla;
    absl::StatusOr<Result> r = Forward(c, groups->get());
    ASSERT_TRUE(r.ok()) << r.status();
    absl::StatusOr<Result> plain = Forward(c, nullptr);
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_LT(RelL2(r->velocity, plain->velocity), kFp32Noise);
    const int layers = c.config.num_layers;
    if (at_one) {
      // Per block: self-attention O, 2 q/k norms, cross-attention O, 2 q/k norms, FFN-down;
      // self-attention q, k, v and back (4 all-to-alls).
      EXPECT_EQ(calls["all_reduce"], 7 * layers);
      EXPECT_EQ(calls["all_to_all"], 4 * layers);
    } else {
      EXPECT_EQ(calls["all_reduce"], 0);
      EXPECT_EQ(calls["all_to_all"], 0);
    }
  }
}

// A whole T2V job: umT5 → rCM (SLA) → VAE → frames, rank 0's frames against one rank's.
class ParallelPipeline : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::TempDir() + "/tv_parallel_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(*dir_);
    ASSERT_TRUE(MakeTinyCheckpoint("t2v", *dir_, 1, /*dit_heads=*/4).ok());
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(*dir_); }
  static GenerateRequest Request(int height = 32) {
    GenerateRequest r;
    r.prompt = "a lighthouse in a storm";
    r.frames = 5;
    r.width = 48;
    r.height = height;  // 32: 2 x 2 x 3 latent tokens (latent 2 x 4 x 6)
    r.steps = 2;
    r.seed = 5;
    r.attention = AttentionMode::kSla;
    return r;
  }
  static absl::StatusOr<GenerateResult> Run(const comm::ParallelGroups* groups,
                                            const CancelFn& cancel = nullptr,
                                            const PipelineOptions& options = {},
                                            int height = 32) {
    std::unique_ptr<Backend> be = MakeCpuBackend();
    TV_ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> p, Pipeline::Load(*dir_, *be, groups, options));
    return p->Generate(Request(height), nullptr, cancel, /*encode_mp4=*/false);
  }
  // Rank 0's frames on `layout` against one rank's; the others return none.
  static void ExpectSameFrames(const std::vector<comm::ParallelLayout>& layouts,
                               const PipelineOptions& options, int height) {
    absl::StatusOr<GenerateResult> one = Run(nullptr, nullptr, {}, height);
    ASSERT_TRUE(one.ok()) << one.status();
    for (const comm::ParallelLayout& layout : layouts) {
      SCOPED_TRACE(absl::StrCat(layout.ToString(), " split_vae_decode ", options.split_vae_decode,
                                " height ", height));
      std::vector<GenerateResult> results(layout.world());
      ASSERT_TRUE(comm::RunInProcessRanks(layout.world(),
                                          [&](int rank, comm::Communicator& world) -> absl::Status {
                                            TV_ASSIGN_OR_RETURN(auto mine, world.Split(0, rank));
                                            TV_ASSIGN_OR_RETURN(auto groups,
                                                                comm::ParallelGroups::Create(
                                                                    std::move(mine), layout));
                                            TV_ASSIGN_OR_RETURN(
                                                results[rank],
                                                Run(groups.get(), nullptr, options, height));
                                            return absl::OkStatus();
                                          })
                      .ok());
      const Tensor& got = results[0].frames;
      ASSERT_EQ(got.shape(), one->frames.shape());
      // uint8 frames: fp32 noise may move a value across a rounding edge, by one.
      int64_t off_by_one = 0;
      for (int64_t i = 0; i < got.numel(); ++i) {
        const int d = std::abs(int{got.data<uint8_t>()[i]} - int{one->frames.data<uint8_t>()[i]});
        ASSERT_LE(d, 1) << "element " << i;
        off_by_one += d;
      }
      EXPECT_LE(off_by_one, got.numel() / 1000);
      for (int r = 1; r < layout.world(); ++r) EXPECT_FALSE(results[r].frames.defined());
    }
  }
  static std::string* dir_;
};
std::string* ParallelPipeline::dir_ = nullptr;

// The default: the VAE decode split by rows over the world group (4 latent rows: 2+2, 1 each).
TEST_F(ParallelPipeline, FramesMatchOneRank) { ExpectSameFrames(kLayouts, {}, 32); }

// Rank 0 decoding alone, and the split over a latent height that does not divide (6 rows over 4
// ranks: 2+2+1+1).
TEST_F(ParallelPipeline, FramesMatchOneRankUnsplitAndUneven) {
  PipelineOptions unsplit;
  unsplit.split_vae_decode = false;
  ExpectSameFrames({{2, 1}, {1, 2}}, unsplit, 32);
  ExpectSameFrames({{1, 4}, {2, 2}}, {}, 48);
}

// collectives_at_one_rank: the split decode runs on the one-rank group too (per latent frame
// the attention's K and V all-gathers and the frames' gather), and the frames match one rank.
TEST_F(ParallelPipeline, OneRankCollectivesIncludeTheDecode) {
  absl::StatusOr<GenerateResult> one = Run(nullptr);
  ASSERT_TRUE(one.ok()) << one.status();
  std::map<bool, int> gathers;
  for (const bool split : {false, true}) {
    SCOPED_TRACE(split ? "split decode" : "unsplit decode");
    std::map<std::string, int> calls;
    std::vector<std::unique_ptr<comm::Communicator>> host = comm::MakeInProcessGroup(1);
    comm::ParallelLayout layout;
    layout.collectives_at_one_rank = true;
    absl::StatusOr<std::unique_ptr<comm::ParallelGroups>> groups = comm::ParallelGroups::Create(
        std::make_unique<CountingCommunicator>(std::move(host[0]), &calls), layout);
    ASSERT_TRUE(groups.ok()) << groups.status();
    PipelineOptions options;
    options.split_vae_decode = split;
    absl::StatusOr<GenerateResult> r = Run(groups->get(), nullptr, options);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->frames.shape(), one->frames.shape());
    for (int64_t i = 0; i < r->frames.numel(); ++i) {
      ASSERT_LE(std::abs(int{r->frames.data<uint8_t>()[i]} - int{one->frames.data<uint8_t>()[i]}),
                1);
    }
    gathers[split] = calls["all_gather"];
  }
  const int latent_frames = (Request().frames - 1) / 4 + 1;
  EXPECT_EQ(gathers[true] - gathers[false], 3 * latent_frames);
}

TEST_F(ParallelPipeline, CancelOnRankZeroStopsEveryRank) {
  std::vector<absl::Status> status(4);
  const comm::ParallelLayout layout{2, 2};
  absl::Status all = comm::RunInProcessRanks(4, [&](int rank, comm::Communicator& world) {
    TV_ASSIGN_OR_RETURN(auto mine, world.Split(0, rank));
    TV_ASSIGN_OR_RETURN(auto groups, comm::ParallelGroups::Create(std::move(mine), layout));
    int checks = 0;
    // Only rank 0's answer counts: the others say "never", rank 0 "yes" at its second check.
    CancelFn cancel = [&checks, rank] { return rank == 0 && ++checks >= 2; };
    status[rank] = Run(groups.get(), cancel).status();
    return absl::OkStatus();
  });
  ASSERT_TRUE(all.ok()) << all;
  for (const absl::Status& s : status) EXPECT_THAT(s, StatusIs(absl::StatusCode::kCancelled));
}

}  // namespace
}  // namespace turbovid::engine
