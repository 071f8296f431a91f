// Our own MP4 reader for checking outputs where ffprobe is absent: walks the ISO BMFF boxes of the
// first video track (ftyp, moov/trak/mdia/{mdhd, hdlr, minf/stbl/{stsd, stts, stsz}}, and for a
// fragmented file moov/mvex/trex and every moof/traf/{tfhd, trun}) with every read bounds-checked.
// Abseil only (its own library, tv_mp4_probe), so the CLI can link it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace turbovid::engine::video {

struct Mp4Info {
  std::string codec;    // "h264" (avc1/avc3), "hevc", "av1", "vp9", "mpeg4", else the box type
  std::string profile;  // H.264 profile from avcC ("High", "Main", ...); empty for other codecs
  int level = 0;        // H.264 level_idc (31 = level 3.1); 0 for other codecs
  int width = 0;        // from the visual sample entry, pixels
  int height = 0;
  int64_t frames = 0;           // stsz sample count
  uint32_t timescale = 0;       // mdhd ticks per second
  uint64_t duration_ticks = 0;  // mdhd duration
  double duration_seconds = 0;  // duration_ticks / timescale
  int64_t fps_num = 0;          // frames · timescale / Σ stts sample deltas, reduced
  int64_t fps_den = 0;
  double fps = 0;
  uint64_t size_bytes = 0;  // the whole file
  bool faststart = false;   // moov comes before the first mdat
  // Fragmented (moov/mvex present): the samples are those of the moof boxes' trun tables for
  // the video track (frames, durations and sizes summed over them) and duration_ticks is their
  // total; `fragments` counts the moofs.
  bool fragmented = false;
  int64_t fragments = 0;
};

// Reads `bytes` (a whole MP4 file). Not an MP4, a box running past its parent or the file, a
// missing or short mandatory box, sample sizes beyond the mdat → DataLoss naming the box path
// ("moov/trak/mdia/minf/stbl/stsz: ...").
absl::StatusOr<Mp4Info> ProbeMp4(std::string_view bytes);

// Reads the file at `path` and probes it; a missing file → NotFound.
absl::StatusOr<Mp4Info> ProbeMp4File(const std::string& path);

}  // namespace turbovid::engine::video
