// The bench table and JSON (see bench_report.h).
#include "engine/tools/bench_report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace turbovid::engine::tools {
namespace {

std::vector<double> Sorted(const std::vector<double>& v) {
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  return s;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

double Gib(int64_t bytes) { return static_cast<double>(bytes) / 1073741824.0; }

}  // namespace

double Row::median() const {
  if (ms.empty()) return NAN;
  const std::vector<double> s = Sorted(ms);
  const size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}
double Row::min() const { return ms.empty() ? NAN : *std::min_element(ms.begin(), ms.end()); }
double Row::max() const { return ms.empty() ? NAN : *std::max_element(ms.begin(), ms.end()); }

bool Report::ok() const {
  return std::none_of(rows.begin(), rows.end(), [](const Row& r) { return !r.error.empty(); });
}

int64_t Report::peak_device() const {
  int64_t peak = std::max<int64_t>(0, in_use_after_load);
  for (const Row& r : rows) peak = std::max(peak, r.peak_bytes);
  return peak;
}

void AddPipelineRows(Report* report) {
  std::map<std::string, const Row*> shared;  // stage → row, for rows without attention
  std::set<std::string> modes;
  for (const Row& r : report->rows) {
    if (!r.error.empty() || r.ms.empty()) continue;
    if (r.attention.empty()) shared[r.stage] = &r;
    if (r.stage == "dit_sample_total") modes.insert(r.attention);
  }
  std::vector<Row> add;
  for (const std::string& mode : modes) {
    Row p;
    p.stage = "pipeline";
    p.attention = mode;
    double sum = 0;
    std::vector<std::string> parts;
    for (const Row& r : report->rows) {
      if (r.stage == "dit_sample_total" && r.attention == mode && r.error.empty()) {
        sum += r.median();
        parts.push_back("dit");
      }
    }
    for (const char* stage : {"text_encode", "vae_decode", "frames", "mp4_encode"}) {
      if (auto it = shared.find(stage); it != shared.end()) {
        sum += it->second->median();
        parts.push_back(stage);
      }
    }
    p.ms = {sum};
    p.note = absl::StrCat("sum of medians: ", absl::StrJoin(parts, " + "));
    add.push_back(p);
  }
  report->rows.insert(report->rows.end(), add.begin(), add.end());
  // The measured end-to-end rows (each with its MP4 tail) go last, right under the sums they
  // check.
  std::stable_partition(report->rows.begin(), report->rows.end(), [](const Row& r) {
    return r.stage != "generate_e2e" && r.stage != "mp4_tail";
  });
}

void PrintReport(const Report& r, FILE* out) {
  absl::FPrintF(
      out, "%s bench: %s %dx%d, %d frames, latent [%s], %d DiT tokens, %d steps, backend %s (%s)\n",
      r.impl, r.model, r.width, r.height, r.frames, absl::StrJoin(r.latent, ","), r.tokens, r.steps,
      r.backend, r.device);
  absl::FPrintF(
      out,
      "warm-up %d, %d timed repeat(s); FLOP: 2 per MAC, SLA = selected blocks + linear branch\n",
      r.warmup, r.repeat);
  absl::FPrintF(out, "%-17s %-5s %4s %11s %11s %11s %9s %9s %8s  %s\n", "stage", "attn", "step",
                "median ms", "min ms", "max ms", "TFLOP", "TFLOP/s", "peak GiB", "note");
  for (const Row& row : r.rows) {
    if (!row.error.empty()) {
      absl::FPrintF(out, "%-17s %-5s %4s %11s %11s %11s %9s %9s %8s  FAILED: %s\n", row.stage,
                    row.attention, "", "-", "-", "-", "-", "-", "-", row.error);
      continue;
    }
    const std::string step = row.step ? absl::StrCat(row.step) : "";
    const double med = row.median();
    const std::string tflop = row.flop > 0 ? absl::StrFormat("%.4g", row.flop / 1e12) : "";
    const std::string tflops =
        row.flop > 0 && med > 0 ? absl::StrFormat("%.4g", row.flop / med / 1e9) : "";
    const std::string peak = row.peak_bytes > 0 ? absl::StrFormat("%.2f", Gib(row.peak_bytes)) : "";
    std::string note = row.note;
    if (row.flop_dense_equiv > 0 && med > 0 && row.attention == "sla") {
      absl::StrAppend(
          &note, note.empty() ? "" : "; ",
          absl::StrFormat("dense-equiv %.4g TFLOP/s", row.flop_dense_equiv / med / 1e9));
    }
    if (row.ms.empty()) {
      absl::FPrintF(out, "%-17s %-5s %4s %11s %11s %11s %9s %9s %8s  %s\n", row.stage,
                    row.attention, step, "-", "-", "-", "", "", "", note);
      continue;
    }
    absl::FPrintF(out, "%-17s %-5s %4s %11.2f %11.2f %11.2f %9s %9s %8s  %s\n", row.stage,
                  row.attention, step, med, row.min(), row.max(), tflop, tflops, peak, note);
  }
  absl::FPrintF(out,
                "peak device memory %.2f GiB (weights etc. in use after loading %.2f GiB); peak "
                "host RSS %.2f GiB; %s\n",
                Gib(r.peak_device()), Gib(std::max<int64_t>(0, r.in_use_after_load)),
                Gib(r.peak_host_rss), r.ok() ? "all stages ok" : "SOME STAGES FAILED");
}

absl::Status WriteReportJson(const Report& r, const std::string& path) {
  std::string j = absl::StrCat(
      "{\n  \"impl\": ", JsonString(r.impl), ",\n  \"model\": ", JsonString(r.model),
      ",\n  \"model_dir\": ", JsonString(r.model_dir), ",\n  \"backend\": ", JsonString(r.backend),
      ",\n  \"device\": ", JsonString(r.device), ",\n  \"width\": ", r.width,
      ",\n  \"height\": ", r.height, ",\n  \"frames\": ", r.frames, ",\n  \"latent\": [",
      absl::StrJoin(r.latent, ", "), "],\n  \"tokens\": ", r.tokens,
      ",\n  \"text_tokens\": ", r.text_tokens, ",\n  \"steps\": ", r.steps,
      ",\n  \"sla_topk\": ", JsonNumber(r.sla_topk), ",\n  \"repeat\": ", r.repeat,
      ",\n  \"warmup\": ", r.warmup, ",\n  \"flop_note\": ",
      JsonString("2 FLOP per MAC; DiT = all GEMMs + 4*L*Lk*D per head; SLA = selected blocks + "
                 "linear branch + proj_l + block scores"),
      ",\n  \"peak_device_bytes\": ", r.peak_device(),
      ",\n  \"device_in_use_after_load_bytes\": ", r.in_use_after_load,
      ",\n  \"peak_host_rss_bytes\": ", r.peak_host_rss, ",\n  \"ok\": ", r.ok() ? "true" : "false",
      ",\n  \"rows\": [");
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const Row& row = r.rows[i];
    const double med = row.median();
    absl::StrAppend(
        &j, i ? "," : "", "\n    {\"stage\": ", JsonString(row.stage),
        ", \"attention\": ", JsonString(row.attention), ", \"step\": ", row.step,
        ", \"median_ms\": ", JsonNumber(med), ", \"min_ms\": ", JsonNumber(row.min()),
        ", \"max_ms\": ", JsonNumber(row.max()), ", \"n\": ", row.ms.size(), ", \"samples_ms\": [",
        absl::StrJoin(row.ms, ", ", [](std::string* o, double v) { o->append(JsonNumber(v)); }),
        "], \"tflop\": ", JsonNumber(row.flop / 1e12),
        ", \"tflops\": ", JsonNumber(row.flop > 0 ? row.flop / med / 1e9 : NAN),
        ", \"dense_equiv_tflops\": ",
        JsonNumber(row.flop_dense_equiv > 0 ? row.flop_dense_equiv / med / 1e9 : NAN),
        ", \"peak_bytes\": ", row.peak_bytes, ", \"note\": ", JsonString(row.note),
        ", \"error\": ", JsonString(row.error), "}");
  }
  j += "\n  ]\n}\n";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << j;
  f.close();
  if (!f) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

}  // namespace turbovid::engine::tools
