// generate / status / watch / cancel / list: parse flags, call VideoService, print.
#include "tools/commands.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "tools/args.h"

namespace turbovid::tools {
namespace {

const std::set<std::string> kCommonValueFlags = {"scheduler", "timeout", "api-key", "ca-cert"};

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

std::set<std::string> With(std::set<std::string> flags) {
  flags.insert(kCommonValueFlags.begin(), kCommonValueFlags.end());
  return flags;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<v1::JobState> ParseState(const std::string& name) {
  if (name.empty()) return v1::JOB_STATE_UNSPECIFIED;
  v1::JobState state;
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (v1::JobState_Parse(absl::StrCat("JOB_STATE_", upper), &state)) return state;
  return absl::InvalidArgumentError(absl::StrCat("--state: unknown state '", name, "'"));
}

absl::StatusOr<v1::SubmitVideoRequest> BuildRequest(const Args& args) {
  v1::SubmitVideoRequest r;
  r.set_model_id(args.Get("model"));
  r.set_variant(args.Get("variant"));
  r.set_prompt(args.Get("prompt"));
  r.set_negative_prompt(args.Get("negative-prompt"));
  if (args.Has("image")) {
    absl::StatusOr<std::string> image = ReadFile(args.Get("image"));
    if (!image.ok()) return image.status();
    r.set_image(*image);
  }
  auto frames = args.GetInt("frames", 0);
  auto steps = args.GetInt("steps", 0);
  auto width = args.GetInt("width", 0);
  auto height = args.GetInt("height", 0);
  auto seed = args.GetInt("seed", 0);
  auto priority = args.GetInt("priority", 0);
  for (const auto* v : {&frames, &steps, &width, &height, &seed, &priority}) {
    if (!v->ok()) return v->status();
  }
  auto deadline = args.GetDouble("deadline", 0);
  if (!deadline.ok()) return deadline.status();
  r.set_deadline_seconds(*deadline);
  r.set_priority_class(args.Get("priority-class"));
  r.set_num_frames(static_cast<int32_t>(*frames));
  r.set_num_steps(static_cast<int32_t>(*steps));
  r.mutable_size()->set_width_pixels(static_cast<int32_t>(*width));
  r.mutable_size()->set_height_pixels(static_cast<int32_t>(*height));
  r.mutable_size()->set_resolution(args.Get("resolution"));
  r.mutable_size()->set_aspect(args.Get("aspect"));
  r.set_seed(static_cast<uint64_t>(*seed));
  r.set_random_seed(!args.Has("seed"));
  r.set_priority(static_cast<int32_t>(*priority));
  std::string attention = args.Get("attention");
  if (attention == "dense") {
    r.set_attention(v1::ATTENTION_MODE_DENSE);
  } else if (attention == "sla") {
    r.set_attention(v1::ATTENTION_MODE_SLA);
  } else if (attention == "sagesla") {
    r.set_attention(v1::ATTENTION_MODE_SAGESLA);
  } else if (!attention.empty()) {
    return absl::InvalidArgumentError("--attention: expected dense, sla or sagesla");
  }
  r.set_client_request_id(args.Has("request-id") ? args.Get("request-id") : RandomRequestId());
  return r;
}

struct Common {
  std::string scheduler;
  absl::Duration timeout;
};

absl::StatusOr<Common> CommonFlags(const Args& args, double default_timeout_s) {
  auto timeout = args.GetDouble("timeout", default_timeout_s);
  if (!timeout.ok()) return timeout.status();
  // VideoClient reads the credentials from the environment; the flags override it.
  if (args.Has("api-key")) setenv("TURBOVID_API_KEY", args.Get("api-key").c_str(), 1);
  if (args.Has("ca-cert")) setenv("TURBOVID_CA_CERT", args.Get("ca-cert").c_str(), 1);
  return Common{args.Get("scheduler", kDefaultScheduler), absl::Seconds(*timeout)};
}

}  // namespace

int ReportError(const absl::Status& status) {
  std::fprintf(stderr, "error: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<v1::Job> GenerateVideo(VideoClient& client, const v1::SubmitVideoRequest& request,
                                      const std::string& out_path, ProgressPrinter* printer,
                                      absl::Duration timeout) {
  absl::StatusOr<v1::Job> submitted = client.Submit(request);
  if (!submitted.ok()) return submitted.status();
  std::fprintf(stderr, "job %s submitted\n", submitted->job_id().c_str());
  auto on_update = [&](const v1::Job& job) {
    if (printer != nullptr) printer->Update(job);
  };
  absl::StatusOr<v1::Job> final_job = client.Watch(submitted->job_id(), on_update, timeout);
  if (printer != nullptr) printer->Finish();
  if (!final_job.ok()) return final_job.status();
  if (final_job->state() == v1::JOB_STATE_SUCCEEDED && !out_path.empty()) {
    absl::StatusOr<int64_t> bytes = client.Download(final_job->job_id(), out_path);
    if (!bytes.ok()) return bytes.status();
  }
  return final_job;
}

int GenerateCommand(const std::vector<std::string>& argv) {
  auto args =
      Args::Parse(argv,
                  With({"model", "variant", "prompt", "negative-prompt", "image", "frames", "steps",
                        "width", "height", "resolution", "aspect", "seed", "priority",
                        "priority-class", "deadline", "attention", "request-id", "out"}),
                  {"json", "quiet", "no-wait"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  auto common = CommonFlags(*args, 3600);
  if (!common.ok()) return ReportError(common.status()) + 1;
  auto request = BuildRequest(*args);
  if (!request.ok()) return ReportError(request.status()) + 1;
  VideoClient client(common->scheduler);
  if (args->Has("no-wait")) {
    auto job = client.Submit(*request);
    if (!job.ok()) return ReportError(job.status());
    std::printf("%s\n", args->Has("json") ? ToJson(*job).c_str() : job->job_id().c_str());
    return 0;
  }
  ProgressPrinter printer(stderr);
  std::string out = args->Get("out");
  bool auto_out = out.empty();
  absl::StatusOr<v1::Job> job = GenerateVideo(client, *request, auto_out ? "" : out,
                                              args->Has("quiet") ? nullptr : &printer,
                                              common->timeout);
  if (!job.ok()) return ReportError(job.status());
  if (job->state() == v1::JOB_STATE_SUCCEEDED && auto_out) {
    out = absl::StrCat(job->job_id(), ".mp4");
    auto bytes = client.Download(job->job_id(), out);
    if (!bytes.ok()) return ReportError(bytes.status());
  }
  if (args->Has("json")) {
    std::printf("%s\n", ToJson(*job).c_str());
  } else {
    std::printf("job %s %s\n", job->job_id().c_str(), StateName(job->state()).c_str());
  }
  if (job->state() != v1::JOB_STATE_SUCCEEDED) {
    std::fprintf(stderr, "job %s ended %s%s%s\n", job->job_id().c_str(),
                 StateName(job->state()).c_str(), job->error().empty() ? "" : ": ",
                 job->error().c_str());
    return 1;
  }
  if (!args->Has("json")) {
    std::printf("video %s (%lld bytes, %dx%d, %d frames)\n", out.c_str(),
                static_cast<long long>(job->video_bytes()), job->width_pixels(),
                job->height_pixels(), job->request().num_frames());
  }
  return 0;
}

int StatusCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, With({}), {"json"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  auto common = CommonFlags(*args, 30);
  if (!common.ok()) return ReportError(common.status()) + 1;
  if (args->positional().size() != 1) {
    std::fprintf(stderr, "usage: turbovid status JOB_ID [--json]\n");
    return 2;
  }
  VideoClient client(common->scheduler, common->timeout);
  auto job = client.Get(args->positional()[0]);
  if (!job.ok()) return ReportError(job.status());
  std::printf("%s\n", args->Has("json") ? ToJson(*job).c_str() : DescribeJob(*job).c_str());
  return 0;
}

int WatchCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, With({}), {"json"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  auto common = CommonFlags(*args, 3600);
  if (!common.ok()) return ReportError(common.status()) + 1;
  if (args->positional().size() != 1) {
    std::fprintf(stderr, "usage: turbovid watch JOB_ID [--json]\n");
    return 2;
  }
  VideoClient client(common->scheduler);
  ProgressPrinter printer(stderr);
  bool json = args->Has("json");
  auto job = client.Watch(
      args->positional()[0],
      [&](const v1::Job& j) {
        if (json) {
          std::printf("%s\n", ToJson(j).c_str());
          std::fflush(stdout);
        } else {
          printer.Update(j);
        }
      },
      common->timeout);
  printer.Finish();
  if (!job.ok()) return ReportError(job.status());
  if (!json) std::printf("%s\n", DescribeJob(*job).c_str());
  return job->state() == v1::JOB_STATE_SUCCEEDED ? 0 : 1;
}

int CancelCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, With({}), {"json"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  auto common = CommonFlags(*args, 30);
  if (!common.ok()) return ReportError(common.status()) + 1;
  if (args->positional().size() != 1) {
    std::fprintf(stderr, "usage: turbovid cancel JOB_ID\n");
    return 2;
  }
  VideoClient client(common->scheduler, common->timeout);
  auto job = client.Cancel(args->positional()[0]);
  if (!job.ok()) return ReportError(job.status());
  std::printf("%s\n", args->Has("json") ? ToJson(*job).c_str() : DescribeJob(*job).c_str());
  return 0;
}

int ListCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, With({"state", "model", "page-size"}), {"json", "all"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  auto common = CommonFlags(*args, 30);
  if (!common.ok()) return ReportError(common.status()) + 1;
  auto state = ParseState(args->Get("state"));
  if (!state.ok()) return ReportError(state.status()) + 1;
  auto page_size = args->GetInt("page-size", 50);
  if (!page_size.ok()) return ReportError(page_size.status()) + 1;
  VideoClient client(common->scheduler, common->timeout);
  v1::ListJobsRequest request;
  request.set_state(*state);
  request.set_model_id(args->Get("model"));
  request.set_page_size(static_cast<int32_t>(*page_size));
  bool json = args->Has("json");
  int count = 0;
  while (true) {
    auto page = client.List(request);
    if (!page.ok()) return ReportError(page.status());
    for (const v1::Job& job : page->jobs()) {
      ++count;
      if (json) {
        std::printf("%s\n", ToJson(job).c_str());
      } else {
        std::printf("%-36s %-10s %-20s %s\n", job.job_id().c_str(),
                    StateName(job.state()).c_str(), job.request().model_id().c_str(),
                    DescribeJob(job).substr(job.job_id().size() + 1).c_str());
      }
    }
    // One page unless --all; the token continues the listing.
    if (!args->Has("all") || page->next_page_token().empty()) {
      if (!json && !page->next_page_token().empty()) {
        std::fprintf(stderr, "more jobs: --all lists every page\n");
      }
      break;
    }
    request.set_page_token(page->next_page_token());
  }
  if (!json) std::fprintf(stderr, "%d jobs\n", count);
  return 0;
}

}  // namespace turbovid::tools
