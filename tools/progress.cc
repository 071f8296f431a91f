// ProgressPrinter and the one-line job summaries shared by generate, watch and list.
#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/video_client.h"

namespace turbovid::tools {
namespace {

std::string FormatEta(double seconds) {
  if (seconds <= 0) return "";
  int s = static_cast<int>(std::ceil(seconds));
  if (s < 60) return absl::StrCat("ETA ", s, "s");
  if (s < 3600) return absl::StrFormat("ETA %dm%02ds", s / 60, s % 60);
  return absl::StrFormat("ETA %dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string Activity(const turbovid::v1::Job& job) {
  using turbovid::v1::JobState;
  std::string out = StateName(job.state());
  if (job.state() == turbovid::v1::JOB_STATE_QUEUED && job.queue_position() > 0) {
    absl::StrAppend(&out, " (position ", job.queue_position(), ")");
  }
  if (!job.status_message().empty()) absl::StrAppend(&out, ": ", job.status_message());
  if (job.state() == turbovid::v1::JOB_STATE_RUNNING &&
      job.stage() != turbovid::v1::STAGE_UNSPECIFIED) {
    absl::StrAppend(&out, " ", StageName(job.stage()));
    if (job.stage() == turbovid::v1::STAGE_DENOISING && job.num_steps() > 0) {
      absl::StrAppend(&out, " step ", job.step(), "/", job.num_steps());
    }
  }
  if (job.state() == turbovid::v1::JOB_STATE_FAILED && !job.error().empty()) {
    absl::StrAppend(&out, ": ", job.error());
  }
  return out;
}

}  // namespace

std::string RenderBar(double fraction, int width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  int filled = static_cast<int>(fraction * width);
  std::string bar(width, ' ');
  for (int i = 0; i < filled; ++i) bar[i] = '=';
  if (filled < width && filled > 0) bar[filled] = '>';
  return absl::StrCat("[", bar, "]");
}

std::string DescribeJob(const turbovid::v1::Job& job) {
  std::string out = absl::StrCat(job.job_id(), " ", Activity(job));
  if (!IsFinal(job.state())) {
    absl::StrAppend(&out, absl::StrFormat(" %3.0f%%", job.progress() * 100));
    std::string eta = FormatEta(job.eta_seconds());
    if (!eta.empty()) absl::StrAppend(&out, " ", eta);
  }
  if (!job.worker_id().empty()) absl::StrAppend(&out, " worker ", job.worker_id());
  return out;
}

ProgressPrinter::ProgressPrinter(std::FILE* out, std::string label)
    : out_(out), label_(std::move(label)), tty_(isatty(fileno(out)) == 1) {}

void ProgressPrinter::Update(const turbovid::v1::Job& job) {
  std::string summary = Activity(job);
  if (tty_) {
    std::string eta = FormatEta(job.eta_seconds());
    std::string line = absl::StrFormat("%s%s %3.0f%%  %s%s%s", label_, RenderBar(job.progress(), 30),
                                       job.progress() * 100, summary, eta.empty() ? "" : "  ", eta);
    // Pad over the previous line's tail, then return to column 0.
    size_t width = std::max(line.size(), last_line_.size());
    line.resize(width, ' ');
    std::fprintf(out_, "\r%s", line.c_str());
    std::fflush(out_);
    last_line_ = line;
    drawn_ = true;
    return;
  }
  if (summary == last_line_) return;
  last_line_ = summary;
  std::fprintf(out_, "%s%3.0f%% %s\n", label_.c_str(), job.progress() * 100, summary.c_str());
  std::fflush(out_);
}

void ProgressPrinter::Finish() {
  if (tty_ && drawn_) std::fprintf(out_, "\n");
  drawn_ = false;
  last_line_.clear();
}

}  // namespace turbovid::tools
