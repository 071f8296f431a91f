// turbovid-loadgen: load bench for the scheduler's public API (never asserts speeds).
// Phase 1 (dispatch): one job at a time on idle workers, submit → ASSIGNED latency, then cancel.
// Phase 2 (load): N jobs from C concurrent clients (each submits, then opens a watch of its job):
// submit latency p50/p99, submits/s, watch first-event latency, completed jobs/s.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/video_client.h"

namespace {

using turbovid::tools::Args;
using turbovid::tools::VideoClient;
namespace v1 = ::turbovid::v1;

struct Options {
  std::string scheduler;
  std::string model;
  int jobs = 1000;
  int concurrency = 16;
  int dispatch_samples = 20;
  int frames = 5, width = 64, height = 64, steps = 2;
  double settle_seconds = 10;  // after the submits, how long to count completions
  // Aggregate submits per second; 0 = closed loop (each client submits as soon as its last
  // submit and watch returned). Paced: job i is due at start + i/rate and its latency counts from
  // that moment, so a client that falls behind schedule adds its lateness to the sample.
  double rate = 0;
  bool cancel_remaining = true;
};

struct Summary {
  double p50 = 0, p99 = 0, max = 0, mean = 0;
  size_t n = 0;
};

Summary Summarize(std::vector<double> ms) {
  Summary s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(p * (ms.size() - 1) + 0.5);
    return ms[std::min(i, ms.size() - 1)];
  };
  s.p50 = pct(0.50);
  s.p99 = pct(0.99);
  s.max = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean = sum / ms.size();
  s.n = ms.size();
  return s;
}

std::string Line(const std::string& name, const Summary& s) {
  return absl::StrFormat("%-28s n=%-5zu p50=%8.3f ms  p99=%8.3f ms  max=%8.3f ms  mean=%8.3f ms",
                         name, s.n, s.p50, s.p99, s.max, s.mean);
}

v1::SubmitVideoRequest MakeRequest(const Options& o, int i) {
  v1::SubmitVideoRequest r;
  r.set_model_id(o.model);
  r.set_prompt(absl::StrCat("load test prompt ", i));
  r.set_num_frames(o.frames);
  r.mutable_size()->set_width_pixels(o.width);
  r.mutable_size()->set_height_pixels(o.height);
  r.set_num_steps(o.steps);
  r.set_seed(static_cast<uint64_t>(i));
  r.set_client_request_id(turbovid::tools::RandomRequestId());
  return r;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// Submit one job on idle workers, time until the watch shows it ASSIGNED or later, cancel it.
std::vector<double> MeasureDispatch(const Options& o, VideoClient& client) {
  std::vector<double> out;
  for (int i = 0; i < o.dispatch_samples; ++i) {
    const absl::Time t0 = absl::Now();
    auto job = client.Submit(MakeRequest(o, -1 - i));
    if (!job.ok()) {
      std::fprintf(stderr, "dispatch submit: %s\n", job.status().ToString().c_str());
      continue;
    }
    bool seen = false;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::WatchJobRequest wr;
    wr.set_job_id(job->job_id());
    auto reader = client.stub().WatchJob(&ctx, wr);
    v1::Job j;
    while (reader->Read(&j)) {
      if (j.state() != v1::JOB_STATE_QUEUED && j.state() != v1::JOB_STATE_UNSPECIFIED) {
        if (j.state() == v1::JOB_STATE_ASSIGNED || j.state() == v1::JOB_STATE_RUNNING ||
            j.state() == v1::JOB_STATE_SUCCEEDED) {
          out.push_back(Ms(absl::Now() - t0));
          seen = true;
        }
        break;
      }
    }
    ctx.TryCancel();
    reader->Finish().ok();
    if (!seen) std::fprintf(stderr, "dispatch sample %d: no assignment seen\n", i);
    (void)client.Cancel(job->job_id());
    // Let the worker finish the cancellation before the next sample.
    (void)client.Watch(job->job_id(), [](const v1::Job&) {}, absl::Seconds(60));
  }
  return out;
}

int64_t CountState(VideoClient& client, const std::string& model, v1::JobState state) {
  v1::ListJobsRequest req;
  req.set_state(state);
  req.set_model_id(model);
  req.set_page_size(1000);
  int64_t n = 0;
  while (true) {
    auto page = client.List(req);
    if (!page.ok()) return -1;
    n += page->jobs_size();
    if (page->next_page_token().empty()) return n;
    req.set_page_token(page->next_page_token());
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto args = Args::Parse(std::vector<std::string>(argv + 1, argv + argc),
                          {"scheduler", "model", "jobs", "concurrency", "dispatch-samples",
                           "frames", "width", "height", "steps", "settle-seconds", "rate"},
                          {"keep-queued", "help"});
  if (!args.ok() || args->Has("help") || !args->Has("model")) {
    std::fprintf(stderr,
                 "usage: turbovid-loadgen --model ID [--scheduler HOST:PORT] [--jobs 1000]\n"
                 "  [--concurrency 16] [--dispatch-samples 20] [--frames 5] [--width 64]\n"
                 "  [--height 64] [--steps 2] [--settle-seconds 10] [--rate SUBMITS_PER_S]\n"
                 "  [--keep-queued]\n");
    if (!args.ok()) std::fprintf(stderr, "%s\n", args.status().ToString().c_str());
    return 2;
  }
  Options o;
  o.scheduler = args->Get("scheduler", turbovid::tools::kDefaultScheduler);
  o.model = args->Get("model");
  for (auto [flag, out] : {std::pair{"jobs", &o.jobs}, std::pair{"concurrency", &o.concurrency},
                           std::pair{"dispatch-samples", &o.dispatch_samples},
                           std::pair{"frames", &o.frames}, std::pair{"width", &o.width},
                           std::pair{"height", &o.height}, std::pair{"steps", &o.steps}}) {
    auto v = args->GetInt(flag, *out);
    if (!v.ok()) {
      std::fprintf(stderr, "%s\n", v.status().ToString().c_str());
      return 2;
    }
    *out = static_cast<int>(*v);
  }
  auto settle = args->GetDouble("settle-seconds", o.settle_seconds);
  if (!settle.ok()) return 2;
  o.settle_seconds = *settle;
  auto rate = args->GetDouble("rate", 0);
  if (!rate.ok() || *rate < 0) {
    std::fprintf(stderr, "rate: %s\n", rate.ok() ? "negative" : rate.status().ToString().c_str());
    return 2;
  }
  o.rate = *rate;
  o.cancel_remaining = !args->Has("keep-queued");
  o.concurrency = std::max(1, o.concurrency);

  VideoClient control(o.scheduler);
  std::printf("turbovid-loadgen: scheduler %s model %s, %d jobs, %d clients, %s\n",
              o.scheduler.c_str(), o.model.c_str(), o.jobs, o.concurrency,
              o.rate > 0 ? absl::StrCat("paced at ", o.rate, " submits/s").c_str() : "closed loop");
  std::vector<double> dispatch = MeasureDispatch(o, control);
  const int64_t succeeded_before = CountState(control, o.model, v1::JOB_STATE_SUCCEEDED);

  std::mutex mu;
  std::vector<double> submit_ms, watch_ms;
  std::vector<std::string> job_ids;
  std::atomic<int> next{0}, errors{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> clients;
  for (int c = 0; c < o.concurrency; ++c) {
    clients.emplace_back([&] {
      VideoClient client(o.scheduler);  // one channel per client, as separate processes would
      std::vector<double> my_submit, my_watch;
      std::vector<std::string> my_ids;
      for (int i = next++; i < o.jobs; i = next++) {
        absl::Time t0 = absl::Now();
        if (o.rate > 0) {
          const absl::Time due = start + absl::Seconds(i / o.rate);
          if (due > t0) absl::SleepFor(due - t0);
          t0 = due;
        }
        auto job = client.Submit(MakeRequest(o, i), absl::ZeroDuration());
        const absl::Time t1 = absl::Now();
        if (!job.ok()) {
          if (errors++ < 5) std::fprintf(stderr, "submit: %s\n", job.status().ToString().c_str());
          continue;
        }
        my_submit.push_back(Ms(t1 - t0));
        my_ids.push_back(job->job_id());
        // Watch: time to the first streamed snapshot of the new job.
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        v1::WatchJobRequest wr;
        wr.set_job_id(job->job_id());
        auto reader = client.stub().WatchJob(&ctx, wr);
        v1::Job j;
        if (reader->Read(&j)) my_watch.push_back(Ms(absl::Now() - t1));
        ctx.TryCancel();
        reader->Finish().ok();
      }
      std::lock_guard<std::mutex> lock(mu);
      submit_ms.insert(submit_ms.end(), my_submit.begin(), my_submit.end());
      watch_ms.insert(watch_ms.end(), my_watch.begin(), my_watch.end());
      job_ids.insert(job_ids.end(), my_ids.begin(), my_ids.end());
    });
  }
  for (std::thread& t : clients) t.join();
  const double submit_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const int64_t queued = CountState(control, o.model, v1::JOB_STATE_QUEUED);
  absl::SleepFor(absl::Seconds(o.settle_seconds));
  const double run_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const int64_t succeeded = CountState(control, o.model, v1::JOB_STATE_SUCCEEDED) - succeeded_before;

  int cancelled = 0;
  if (o.cancel_remaining) {
    for (const std::string& id : job_ids) {
      auto job = control.Get(id);
      if (job.ok() && !turbovid::tools::IsFinal(job->state()) && control.Cancel(id).ok()) {
        ++cancelled;
      }
    }
  }
  const Summary submit = Summarize(submit_ms);
  std::printf("%s\n", Line("dispatch (submit→ASSIGNED)", Summarize(dispatch)).c_str());
  std::printf("%s\n", Line("submit", submit).c_str());
  std::printf("%s\n", Line("watch first event", Summarize(watch_ms)).c_str());
  std::printf("submits: %zu ok, %d errors in %.3f s = %.1f submits/s (%d clients, each also "
              "opening a watch)\n",
              submit_ms.size(), errors.load(), submit_seconds, submit_ms.size() / submit_seconds,
              o.concurrency);
  std::printf("queued after submits: %lld; completed in %.1f s: %lld = %.2f jobs/s; cancelled "
              "afterwards: %d\n",
              static_cast<long long>(queued), run_seconds, static_cast<long long>(succeeded),
              succeeded / run_seconds, cancelled);
  std::printf(
      "{\"jobs\": %d, \"clients\": %d, \"rate\": %.0f, \"submit_p50_ms\": %.3f, \"submit_p99_ms\": %.3f, "
      "\"submits_per_second\": %.1f, \"dispatch_p50_ms\": %.3f, \"dispatch_p99_ms\": %.3f, "
      "\"completed_jobs_per_second\": %.3f, \"queued_after_submit\": %lld}\n",
      o.jobs, o.concurrency, o.rate, submit.p50, submit.p99, submit_ms.size() / submit_seconds,
      Summarize(dispatch).p50, Summarize(dispatch).p99, succeeded / run_seconds,
      static_cast<long long>(queued));
  return errors.load() == 0 ? 0 : 1;
}
