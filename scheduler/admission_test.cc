// Admission: every rejected field gets INVALID_ARGUMENT (asserted on the code, not the text);
// defaults resolve from the catalog; image headers are sniffed without decoding.
#include "scheduler/admission.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/image_check.h"

namespace turbovid::scheduler {
namespace {

namespace v1 = ::turbovid::v1;
using ::turbovid::common::testing::IsOk;
using ::testing::HasSubstr;
using ::turbovid::common::testing::StatusIs;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// A valid 1x1 PNG (signature, IHDR, IDAT, IEND).
std::string TinyPng() {
  static const unsigned char kBytes[] = {
      0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
      0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78,
      0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0, 0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99,
      0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(kBytes), sizeof(kBytes));
}

class AdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto catalog = ModelCatalog::LoadFile(TV_MODELS_YAML);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = std::move(*catalog);
  }
  absl::StatusOr<ResolvedRequest> Validate(const v1::SubmitVideoRequest& r) {
    return ValidateSubmit(r, catalog_, limits_, 777);
  }
  static v1::SubmitVideoRequest T2v() {
    v1::SubmitVideoRequest r;
    r.set_model_id("wan2.1-t2v-1.3b");
    r.set_prompt("a cat surfing");
    return r;
  }
  ModelCatalog catalog_;
  AdmissionLimits limits_;
};

TEST_F(AdmissionTest, ResolvesDefaults) {
  auto resolved = Validate(T2v());
  ASSERT_THAT(resolved, IsOk());
  EXPECT_EQ(resolved->variant->name, "turbo");
  EXPECT_EQ(resolved->num_frames, 81);
  EXPECT_EQ(resolved->num_steps, 4);
  EXPECT_EQ(resolved->width_pixels, 832);
  EXPECT_EQ(resolved->height_pixels, 480);
  EXPECT_EQ(resolved->attention, v1::ATTENTION_MODE_SLA);
  v1::SubmitVideoRequest r = T2v();
  r.set_random_seed(true);
  EXPECT_EQ(Validate(r)->seed, 777u);
  r.mutable_size()->set_resolution("720p");
  r.mutable_size()->set_aspect("9:16");
  EXPECT_EQ(Validate(r)->width_pixels, 720);
}

// The resolved job holds every default, ready for the worker to copy.
TEST_F(AdmissionTest, ResolvedJobCarriesEveryDefault) {
  v1::SubmitVideoRequest r = T2v();
  r.set_random_seed(true);
  auto resolved = Validate(r);
  ASSERT_THAT(resolved, IsOk());
  const v1::ResolvedJob& job = resolved->job;
  EXPECT_EQ(job.model_id(), "wan2.1-t2v-1.3b");
  EXPECT_EQ(job.variant(), "turbo");
  EXPECT_EQ(job.sampler(), v1::SAMPLER_RCM);
  EXPECT_EQ(job.num_steps(), 4);
  EXPECT_EQ(job.num_frames(), 81);
  EXPECT_EQ(job.width_pixels(), 832);
  EXPECT_EQ(job.height_pixels(), 480);
  EXPECT_EQ(job.seed(), 777u);
  EXPECT_EQ(job.attention(), v1::ATTENTION_MODE_SLA);
  EXPECT_FLOAT_EQ(job.sla_topk(), 0.1f);
  EXPECT_EQ(job.prompt(), "a cat surfing");
  EXPECT_THAT(CheckResolvedJob(job), IsOk());

  r = T2v();
  r.set_variant("original");
  r.set_seed(5);
  r.set_negative_prompt("blurry");
  r.set_attention(v1::ATTENTION_MODE_SLA);
  resolved = Validate(r);
  ASSERT_THAT(resolved, IsOk());
  EXPECT_EQ(resolved->job.sampler(), v1::SAMPLER_UNIPC);
  EXPECT_EQ(resolved->job.num_steps(), 50);
  EXPECT_EQ(resolved->job.seed(), 5u);
  EXPECT_EQ(resolved->job.attention(), v1::ATTENTION_MODE_SLA);  // the request's, not the default
  EXPECT_EQ(resolved->job.negative_prompt(), "blurry");
  r.set_attention(v1::ATTENTION_MODE_UNSPECIFIED);
  EXPECT_EQ(Validate(r)->job.attention(), v1::ATTENTION_MODE_DENSE);
  EXPECT_EQ(Validate(r)->job.sla_topk(), 0.f);
  // SageSLA is SLA's sparse quantised: it carries the variant's top-k too.
  r = T2v();
  r.set_attention(v1::ATTENTION_MODE_SAGESLA);
  resolved = Validate(r);
  ASSERT_THAT(resolved, IsOk());
  EXPECT_EQ(resolved->job.attention(), v1::ATTENTION_MODE_SAGESLA);
  EXPECT_GT(resolved->job.sla_topk(), 0.f);
  EXPECT_THAT(CheckResolvedJob(resolved->job), IsOk());
  // Previews: 16..512 pixels wide, or none.
  r.set_preview_width(8);
  EXPECT_THAT(Validate(r), StatusIs(kInvalid));
  EXPECT_THAT(std::string(Validate(r).status().message()), HasSubstr("preview_width"));
  r.set_preview_width(160);
  ASSERT_THAT(Validate(r), IsOk());
  EXPECT_EQ(Validate(r)->job.preview_width(), 160);
}

// The sampler is the catalog variant's `sampler`, whatever the variant is called.
TEST_F(AdmissionTest, SamplerComesFromTheCatalogNotTheVariantName) {
  auto root = common::ConfigNode::LoadString(
      "models:\n  - id: m\n    default_variant: fast\n    default_resolution: 480p\n"
      "    variants:\n"
      "      - name: fast\n        sampler: rcm\n        default_steps: 2\n"
      "        max_steps: 4\n        attention: sla\n        sla_topk: 0.2\n"
      "        memory_gib: {cpu: 1}\n"
      "      - name: turbo-guided\n        sampler: unipc\n        default_steps: 8\n"
      "        max_steps: 50\n        attention: dense\n        memory_gib: {cpu: 1}\n");
  ASSERT_THAT(root, IsOk());
  auto catalog = ModelCatalog::Parse(*root);
  ASSERT_THAT(catalog, IsOk());
  v1::SubmitVideoRequest r;
  r.set_model_id("m");
  r.set_prompt("a cat");
  auto fast = ValidateSubmit(r, *catalog, limits_, 1);
  ASSERT_THAT(fast, IsOk());
  EXPECT_EQ(fast->job.variant(), "fast");
  EXPECT_EQ(fast->job.sampler(), v1::SAMPLER_RCM);
  EXPECT_EQ(fast->job.num_steps(), 2);
  EXPECT_EQ(fast->job.attention(), v1::ATTENTION_MODE_SLA);
  EXPECT_FLOAT_EQ(fast->job.sla_topk(), 0.2f);
  r.set_variant("turbo-guided");
  auto guided = ValidateSubmit(r, *catalog, limits_, 1);
  ASSERT_THAT(guided, IsOk());
  EXPECT_EQ(guided->job.sampler(), v1::SAMPLER_UNIPC);
  EXPECT_EQ(guided->job.num_steps(), 8);
  EXPECT_EQ(guided->job.attention(), v1::ATTENTION_MODE_DENSE);
}

TEST_F(AdmissionTest, CheckResolvedJobNamesTheUnresolvedField) {
  auto resolved = Validate(T2v());
  ASSERT_THAT(resolved, IsOk());
  for (void (*edit)(v1::ResolvedJob*) : {
           +[](v1::ResolvedJob* j) { j->clear_variant(); },
           +[](v1::ResolvedJob* j) { j->clear_sampler(); },
           +[](v1::ResolvedJob* j) { j->clear_attention(); },
           +[](v1::ResolvedJob* j) { j->set_sla_topk(0.f); },
           +[](v1::ResolvedJob* j) { j->set_num_frames(80); },
           +[](v1::ResolvedJob* j) { j->clear_num_steps(); },
           +[](v1::ResolvedJob* j) { j->set_width_pixels(20); },
       }) {
    v1::ResolvedJob job = resolved->job;
    edit(&job);
    EXPECT_THAT(CheckResolvedJob(job), StatusIs(kInvalid)) << job.ShortDebugString();
  }
}

TEST_F(AdmissionTest, RejectsBadFieldsWithInvalidArgument) {
  struct Case {
    const char* name;
    void (*edit)(v1::SubmitVideoRequest*);
  };
  const Case cases[] = {
      {"frames 80", [](v1::SubmitVideoRequest* r) { r->set_num_frames(80); }},
      {"frames too many", [](v1::SubmitVideoRequest* r) { r->set_num_frames(401); }},
      {"width not /16",
       [](v1::SubmitVideoRequest* r) {
         r->mutable_size()->set_width_pixels(500);
         r->mutable_size()->set_height_pixels(480);
       }},
      {"height missing",
       [](v1::SubmitVideoRequest* r) { r->mutable_size()->set_width_pixels(512); }},
      {"too many pixels",
       [](v1::SubmitVideoRequest* r) {
         r->mutable_size()->set_width_pixels(1920);
         r->mutable_size()->set_height_pixels(1088);
       }},
      {"bad resolution",
       [](v1::SubmitVideoRequest* r) { r->mutable_size()->set_resolution("1080p"); }},
      {"bad aspect", [](v1::SubmitVideoRequest* r) { r->mutable_size()->set_aspect("2:1"); }},
      {"empty prompt", [](v1::SubmitVideoRequest* r) { r->set_prompt(""); }},
      {"oversized prompt",
       [](v1::SubmitVideoRequest* r) { r->set_prompt(std::string(5000, 'x')); }},
      {"unknown model", [](v1::SubmitVideoRequest* r) { r->set_model_id("sora"); }},
      {"empty model", [](v1::SubmitVideoRequest* r) { r->set_model_id(""); }},
      {"unknown variant", [](v1::SubmitVideoRequest* r) { r->set_variant("fp4"); }},
      {"steps over max", [](v1::SubmitVideoRequest* r) { r->set_num_steps(5); }},
      {"steps negative", [](v1::SubmitVideoRequest* r) { r->set_num_steps(-1); }},
      {"negative prompt on turbo", [](v1::SubmitVideoRequest* r) { r->set_negative_prompt("x"); }},
      {"image on t2v", [](v1::SubmitVideoRequest* r) { r->set_image(TinyPng()); }},
      {"priority", [](v1::SubmitVideoRequest* r) { r->set_priority(5000); }},
      {"attention",
       [](v1::SubmitVideoRequest* r) { r->set_attention(static_cast<v1::AttentionMode>(9)); }},
      {"request id",
       [](v1::SubmitVideoRequest* r) { r->set_client_request_id(std::string(200, 'k')); }},
  };
  for (const Case& c : cases) {
    v1::SubmitVideoRequest r = T2v();
    c.edit(&r);
    EXPECT_THAT(Validate(r), StatusIs(kInvalid)) << c.name;
  }
}

TEST_F(AdmissionTest, FramesMessageNamesTheField) {
  v1::SubmitVideoRequest r = T2v();
  r.set_num_frames(80);
  EXPECT_EQ(Validate(r).status().message(), "num_frames: 80 is not 4k+1");
}

TEST_F(AdmissionTest, I2vNeedsAValidImage) {
  v1::SubmitVideoRequest r;
  r.set_model_id("wan2.2-i2v-a14b");
  r.set_prompt("the cat jumps");
  EXPECT_THAT(Validate(r), StatusIs(kInvalid));  // no image
  r.set_image("not an image at all");
  EXPECT_THAT(Validate(r), StatusIs(kInvalid));
  r.set_image(TinyPng().substr(0, 40));  // truncated
  EXPECT_THAT(Validate(r), StatusIs(kInvalid));
  r.set_image(TinyPng());
  auto resolved = Validate(r);
  ASSERT_THAT(resolved, IsOk());
  // I2V defaults to 720p: its area (1280x720) in the square image's aspect.
  EXPECT_EQ(resolved->width_pixels, 960);
  EXPECT_EQ(resolved->height_pixels, 960);
  EXPECT_EQ(resolved->job.width_pixels(), 960);
  limits_.max_image_bytes = 10;
  EXPECT_THAT(Validate(r), StatusIs(kInvalid));
}

TEST_F(AdmissionTest, I2vSizeFollowsTheImage) {
  v1::SubmitVideoRequest r;
  r.set_model_id("wan2.2-i2v-a14b");
  r.set_prompt("the cat jumps");
  // Minimal JPEG, 16x8: aspect h/w = 0.5.
  r.set_image(
      std::string("\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x08\x00\x10\x01\x01\x11\x00\xFF\xD9", 17));
  r.mutable_size()->set_resolution("480p");
  auto resolved = Validate(r);
  ASSERT_THAT(resolved, IsOk());
  // Area 832x480 = 399360: h = round16(sqrt(399360 / 2)) = 448,
  // w = round16(sqrt(399360 * 2)) = 896.
  EXPECT_EQ(resolved->width_pixels, 896);
  EXPECT_EQ(resolved->height_pixels, 448);
  EXPECT_EQ(resolved->job.width_pixels(), 896);
  EXPECT_EQ(resolved->job.height_pixels(), 448);
  EXPECT_EQ(AcceptedRequest(r, *resolved).size().width_pixels(), 896);
  // A 1x8192 image at 720p: 16x86880 (sides clamped to 16) is far above the pixel limit.
  r.mutable_size()->set_resolution("720p");
  r.set_image(
      std::string("\xFF\xD8\xFF\xC0\x00\x0B\x08\x20\x00\x00\x01\x01\x01\x11\x00\xFF\xD9", 17));
  EXPECT_THAT(Validate(r), StatusIs(kInvalid));
}

TEST(ImageCheckTest, ReadsHeaders) {
  auto png = InspectImage(TinyPng());
  ASSERT_THAT(png, IsOk());
  EXPECT_EQ(png->format, "png");
  EXPECT_EQ(png->width, 1);
  // Minimal JPEG: SOI, SOF0 (8-bit, 16x8, 1 component), EOI.
  const std::string jpeg("\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x08\x00\x10\x01\x01\x11\x00\xFF\xD9",
                         17);
  auto info = InspectImage(jpeg);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->width, 16);
  EXPECT_EQ(info->height, 8);
  EXPECT_THAT(InspectImage(jpeg.substr(0, 12)), StatusIs(kInvalid));
  const std::string gif("GIF89a\x20\x00\x10\x00\x00\x00\x00\x3B", 14);
  EXPECT_EQ(InspectImage(gif)->width, 32);
  EXPECT_THAT(InspectImage(std::string("GIF89a\x00\x00\x10\x00\x00\x00\x00\x3B", 14)),
              StatusIs(kInvalid));
  EXPECT_THAT(InspectImage("BM"), StatusIs(kInvalid));
  EXPECT_THAT(InspectImage(std::string("RIFF\x04\x00\x00\x00WEBP", 12)), StatusIs(kInvalid));
}

TEST(SchedulerConfigTest, ShippedConfigLoads) {
  auto config = LoadSchedulerConfig(TV_SCHEDULER_YAML);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->max_attempts, 3);
  EXPECT_EQ(config->admission.max_prompt_bytes, 4096);
  EXPECT_FALSE(config->auth.off);  // authentication is on unless a config says otherwise
  EXPECT_EQ(config->auth.api_keys_file, "keys.yaml");
  EXPECT_EQ(config->api_http_address, "127.0.0.1");
  EXPECT_EQ(config->api_http_port, 8080);
  EXPECT_EQ(config->http_threads, 1024);
  EXPECT_FALSE(config->grpc_reflection);
  EXPECT_EQ(config->quotas.max_active_jobs, 0);
}

TEST(SchedulerConfigTest, RejectsUnknownKeysAndBadValues) {
  SchedulerConfig config;
  config.lease_seconds = 1;
  config.heartbeat_interval_seconds = 2;
  EXPECT_THAT(ValidateSchedulerConfig(config), StatusIs(kInvalid));
  config = SchedulerConfig();
  config.max_attempts = 0;
  EXPECT_THAT(ValidateSchedulerConfig(config), StatusIs(kInvalid));
  EXPECT_THAT(LoadSchedulerConfig("/nonexistent.yaml"), StatusIs(absl::StatusCode::kNotFound));
}

// Admission may lower the caps every gRPC channel is sized for (common/limits.h), never raise them,
// and the scheduler's own message cap must hold the largest admitted request.
TEST(SchedulerConfigTest, AdmissionStaysUnderTheChannelLimits) {
  SchedulerConfig config;
  EXPECT_THAT(ValidateSchedulerConfig(config), IsOk());
  EXPECT_LE(config.admission.max_image_bytes, common::kMaxImageBytes);
  EXPECT_GE(config.max_message_bytes, common::kMaxRequestBytes);
  config.admission.max_image_bytes = common::kMaxImageBytes + 1;
  EXPECT_THAT(ValidateSchedulerConfig(config), StatusIs(kInvalid));
  config = SchedulerConfig();
  config.admission.max_prompt_bytes = common::kMaxPromptBytes + 1;
  EXPECT_THAT(ValidateSchedulerConfig(config), StatusIs(kInvalid));
  config = SchedulerConfig();
  config.max_message_bytes = common::kMaxRequestBytes - 1;
  EXPECT_THAT(ValidateSchedulerConfig(config), StatusIs(kInvalid));
  config.admission.max_image_bytes = 1 << 20;  // a lower cap still needs the full channel
  EXPECT_THAT(ValidateSchedulerConfig(config), StatusIs(kInvalid));
}

TEST(ModelCatalogTest, ShippedCatalogHasTheDesignModels) {
  auto catalog = ModelCatalog::LoadFile(TV_MODELS_YAML);
  ASSERT_THAT(catalog, IsOk());
  for (const char* id :
       {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.2-i2v-a14b", "tiny-t2v", "tiny-i2v"}) {
    EXPECT_NE(catalog->Find(id), nullptr) << id;
  }
  EXPECT_TRUE(catalog->Find("wan2.2-i2v-a14b")->FindVariant("turbo")->is_i2v);
  EXPECT_EQ(catalog->Find("wan2.2-i2v-a14b")->experts, 2);
}

TEST(ModelCatalogTest, GpusPerNodeClass) {
  auto parse = [](const std::string& gpus) {
    auto root = common::ConfigNode::LoadString(absl::StrCat(
        "models:\n  - id: m\n    default_variant: v\n    default_resolution: 480p\n"
        "    variants:\n      - name: v\n        sampler: rcm\n        default_steps: 1\n"
        "        max_steps: 4\n        attention: sla\n        memory_gib: {h100: 64, cpu: 1}\n"
        "        ",
        gpus));
    EXPECT_THAT(root, IsOk());
    return ModelCatalog::Parse(*root);
  };
  auto catalog = parse("gpus: {h100: 4}\n");
  ASSERT_THAT(catalog, IsOk());
  const VariantSpec* v = catalog->Find("m")->FindVariant("v");
  EXPECT_EQ(v->gpus.at("h100"), 4);
  EXPECT_EQ(v->gpus.count("cpu"), 0u);
  EXPECT_THAT(parse("gpus: {h100: 0}\n"), StatusIs(kInvalid));
  EXPECT_THAT(parse("gpus: {h100: 16}\n"), StatusIs(kInvalid));
  EXPECT_THAT(parse("gpus: {rtx5090: 2}\n"), StatusIs(kInvalid));  // no memory entry there
}

TEST(ModelCatalogTest, RejectsBrokenCatalog) {
  auto root = common::ConfigNode::LoadString(
      "models:\n  - id: m\n    default_variant: v\n    default_resolution: 480p\n"
      "    variants:\n      - name: v\n        sampler: euler\n        default_steps: 1\n"
      "        max_steps: 1\n        attention: sla\n        memory_gib: {cpu: 1}\n");
  ASSERT_THAT(root, IsOk());
  EXPECT_THAT(ModelCatalog::Parse(*root), StatusIs(kInvalid));
}

TEST(ModelCatalogTest, RejectsRcmBeyondFourStepsAndBadSlaTopk) {
  for (const char* variant : {"sampler: rcm\n        max_steps: 8\n        sla_topk: 0.1\n",
                              "sampler: rcm\n        max_steps: 4\n        sla_topk: 1.5\n"}) {
    auto root = common::ConfigNode::LoadString(absl::StrCat(
        "models:\n  - id: m\n    default_variant: v\n    default_resolution: 480p\n"
        "    variants:\n      - name: v\n        default_steps: 1\n        attention: sla\n"
        "        memory_gib: {cpu: 1}\n        ",
        variant));
    ASSERT_THAT(root, IsOk());
    EXPECT_THAT(ModelCatalog::Parse(*root), StatusIs(kInvalid)) << variant;
  }
}

}  // namespace
}  // namespace turbovid::scheduler
