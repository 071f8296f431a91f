// Rows and output of `turbovid-engine bench`: the human table and the JSON that
// bench/torch_reference.py writes too (bench/h100.sh joins the two by stage, attention and step).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/core/tensor.h"

namespace turbovid::engine::tools {

struct Row {
  std::string stage;            // load_text, text_encode, load_dit, dit_context, dit_forward, ...,
                                // load_pipeline, generate_e2e, mp4_tail
  std::string attention;        // dense | sla for DiT rows, else empty
  int step = 0;                 // 1-based rCM step for dit_forward rows
  std::vector<double> ms;       // one sample per timed repeat
  double flop = 0;              // per call (0: not counted)
  double flop_dense_equiv = 0;  // SLA rows: the same forward with dense attention
  int64_t peak_bytes = -1;      // device peak during the timed calls (load rows: in use after)
  std::string note;
  std::string error;  // non-empty: the stage failed

  double median() const;
  double min() const;
  double max() const;
};

struct Report {
  std::string impl = "turbovid-engine";
  std::string model, model_dir, backend, device;
  int width = 0, height = 0, frames = 0, steps = 0, repeat = 0, warmup = 0;
  float sla_topk = 0;
  Shape latent;
  int64_t tokens = 0;
  int64_t text_tokens = 0;
  int64_t in_use_after_load = -1;
  int64_t peak_host_rss = 0;
  std::vector<Row> rows;

  bool ok() const;              // no row failed
  int64_t peak_device() const;  // max over rows (0 when the backend does not count)
};

// Appends one `pipeline` row per attention mode: text_encode + dit_sample_total + vae_decode +
// frames + mp4_encode medians (the stages that ran), i.e. a warm prompt → MP4 estimate, and
// moves the measured generate_e2e rows (Pipeline::Generate end to end) and their mp4_tail rows
// after them.
void AddPipelineRows(Report* report);
void PrintReport(const Report& report, FILE* out);
absl::Status WriteReportJson(const Report& report, const std::string& path);

}  // namespace turbovid::engine::tools
