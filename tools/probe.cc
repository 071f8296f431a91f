// probe: reads an MP4 file locally (engine/video/mp4_probe.h, no FFmpeg, no scheduler) and prints
// codec, width, height, frames, fps, duration, file size and whether moov comes first
// (faststart).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "engine/video/mp4_probe.h"
#include "tools/args.h"
#include "tools/commands.h"

namespace turbovid::tools {

int ProbeCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {}, {"json"});
  if (!args.ok()) return ReportError(args.status()) + 1;
  if (args->positional().size() != 1) {
    std::fprintf(stderr, "usage: turbovid probe FILE.mp4 [--json]\n");
    return 2;
  }
  auto info = engine::video::ProbeMp4File(args->positional()[0]);
  if (!info.ok()) return ReportError(info.status());
  // ProbeMp4 spells codec and profile from a fixed table or as letters, digits and '?' only, so
  // they need no JSON escaping.
  const engine::video::Mp4Info& i = *info;
  if (args->Has("json")) {
    absl::PrintF(
        "{\"codec\": \"%s\", \"profile\": \"%s\", \"level\": %d, \"width\": %d, \"height\": %d, "
        "\"frames\": %d, \"fps\": %.6g, \"frame_rate\": \"%d/%d\", \"duration_seconds\": %.6f, "
        "\"size_bytes\": %d, \"faststart\": %s, \"fragments\": %d}\n",
        i.codec, i.profile, i.level, i.width, i.height, i.frames, i.fps, i.fps_num, i.fps_den,
        i.duration_seconds, i.size_bytes, i.faststart ? "true" : "false", i.fragments);
    return 0;
  }
  absl::PrintF("codec:     %s%s\n", i.codec, i.profile.empty() ? "" : " (" + i.profile + ")");
  absl::PrintF("width:     %d\n", i.width);
  absl::PrintF("height:    %d\n", i.height);
  absl::PrintF("frames:    %d\n", i.frames);
  absl::PrintF("fps:       %.6g (%d/%d)\n", i.fps, i.fps_num, i.fps_den);
  absl::PrintF("duration:  %.3f s\n", i.duration_seconds);
  absl::PrintF("size:      %d bytes\n", i.size_bytes);
  absl::PrintF("faststart: %s\n", i.faststart ? "yes (moov before mdat)" : "no (mdat first)");
  if (i.fragmented) absl::PrintF("fragments: %d (fragmented MP4)\n", i.fragments);
  return 0;
}

}  // namespace turbovid::tools
