// Live job progress on stderr: a redrawn bar on a terminal, one line per change otherwise.
#pragma once

#include <cstdio>
#include <string>

#include "turbovid/v1/video_service.pb.h"

namespace turbovid::tools {

class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::FILE* out = stderr, std::string label = "");
  // Draws the job's state: [=====>    ]  45%  DENOISING step 2/4  ETA 12s.
  void Update(const turbovid::v1::Job& job);
  // Ends the bar's line (call once the job is final).
  void Finish();

 private:
  std::FILE* out_;
  std::string label_;
  bool tty_;
  std::string last_line_;  // last printed summary (non-tty: print only on change)
  bool drawn_ = false;
};

// One line describing a job: "a1b2 RUNNING DENOISING step 2/4 45% ETA 12s worker w1".
std::string DescribeJob(const turbovid::v1::Job& job);
// The bar alone, `width` cells.
std::string RenderBar(double fraction, int width);

}  // namespace turbovid::tools
