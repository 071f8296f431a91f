// Frames → MP4 with libx264 alone: RGB → yuv420p over the cores, x264's C API (length-prefixed
// NALs, SPS/PPS out of band), and an ISO/IEC 14496-12/-15 muxer written here (ftyp, moov, mdat;
// moov first since every sample is in memory when we mux; or fragmented: ftyp + moov with mvex,
// then moof + mdat per fragment). Over 600 lines: the muxer serves this
// encoder alone and is kept beside it.
#include "engine/video/mp4_x264.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/core/colour.h"

extern "C" {
#include <stdint.h>  // x264.h uses the fixed-width types without including their header
#include <x264.h>
}

namespace turbovid::engine::video {
namespace {

constexpr int kMaxSide = 8192;             // as the FFmpeg path
constexpr int64_t kMaxFrames = 1'000'000;  // keeps every 32-bit duration field in range
constexpr int kFramesPerBatch = 8;         // frames converted together before x264 takes them
// Fragmented MP4: x264's lookahead, in frames; each fragment lags the frames added by this many
// (one Wan latent frame's worth of video frames).
constexpr int kFragmentLookahead = 4;

// ---------------------------------------------------------------------------------------------
// Checks (same fields, ranges and wording as the FFmpeg path in mp4_encode.cc).

absl::Status CheckOptions(const Mp4Options& options) {
  if (options.fps < 1 || options.fps > 240) {
    return absl::InvalidArgumentError(absl::StrCat("fps: ", options.fps, " is outside [1, 240]"));
  }
  if (options.crf < 0 || options.crf > 51) {
    return absl::InvalidArgumentError(absl::StrCat("crf: ", options.crf, " is outside [0, 51]"));
  }
  for (const char* const* p = x264_preset_names; *p != nullptr; ++p) {
    if (options.preset == *p) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("preset: \"", options.preset, "\" is not an x264 preset"));
}

absl::Status CheckSize(int width, int height) {
  if (width < 2 || width > kMaxSide || width % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "width: ", width, " is not an even number in [2, ", kMaxSide, "] (yuv420p needs even)"));
  }
  if (height < 2 || height > kMaxSide || height % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "height: ", height, " is not an even number in [2, ", kMaxSide, "] (yuv420p needs even)"));
  }
  return absl::OkStatus();
}

// frames: [T, H, W, 3] U8 host tensor; every dim in range, H and W even.
absl::Status CheckFrames(const Tensor& frames) {
  if (!frames.defined()) return absl::InvalidArgumentError("frames: tensor is empty");
  if (frames.device() != Device::kCpu || frames.dtype() != DType::kU8 || frames.rank() != 4 ||
      frames.dim(3) != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames: ", frames.Describe(), " is not a host U8 RGB [F, H, W, 3] tensor"));
  }
  for (int i = 0; i < 3; ++i) {
    if (frames.dim(i) < 1 || frames.dim(i) > (i == 0 ? kMaxFrames : kMaxSide)) {
      return absl::InvalidArgumentError(
          absl::StrCat("frames: dim ", i, " of ", frames.Describe(), " is out of range"));
    }
  }
  if (frames.dim(1) % 2 != 0 || frames.dim(2) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "frames: ", frames.Describe(), " has an odd height or width; yuv420p needs both even"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// ISO-BMFF writer.

struct Sample {
  int64_t offset = 0;  // into the mdat payload
  uint32_t size = 0;
  int64_t pts = 0;  // frame units
  int64_t dts = 0;
  bool key = false;
};

struct MuxInput {
  int width = 0;
  int height = 0;
  int fps = 0;
  std::string sps;  // NAL units without length prefix
  std::string pps;
  const std::vector<Sample>* samples = nullptr;
};

class Boxes {
 public:
  void U8(uint32_t v) { out_.push_back(static_cast<char>(v & 0xff)); }
  void U16(uint32_t v) { U8(v >> 8), U8(v); }
  void U32(uint32_t v) { U16(v >> 16), U16(v); }
  void U64(uint64_t v) { U32(static_cast<uint32_t>(v >> 32)), U32(static_cast<uint32_t>(v)); }
  void Bytes(std::string_view b) { out_.append(b); }
  void Zeros(size_t n) { out_.append(n, '\0'); }
  size_t Begin(const char (&type)[5]) {
    const size_t at = out_.size();
    U32(0);
    out_.append(type, 4);
    return at;
  }
  size_t BeginFull(const char (&type)[5], uint32_t version, uint32_t flags) {
    const size_t at = Begin(type);
    U32(version << 24 | flags);
    return at;
  }
  void End(size_t at) {
    const uint32_t size = static_cast<uint32_t>(out_.size() - at);
    for (int i = 0; i < 4; ++i) out_[at + i] = static_cast<char>(size >> (24 - 8 * i));
  }
  void Matrix() {
    for (uint32_t v : {0x00010000u, 0u, 0u, 0u, 0x00010000u, 0u, 0u, 0u, 0x40000000u}) U32(v);
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// (count, value) runs of a sequence.
std::vector<std::pair<uint32_t, int64_t>> Runs(const std::vector<int64_t>& values) {
  std::vector<std::pair<uint32_t, int64_t>> runs;
  for (int64_t v : values) {
    if (!runs.empty() && runs.back().second == v) {
      ++runs.back().first;
    } else {
      runs.push_back({1, v});
    }
  }
  return runs;
}

void WriteSampleDescription(const MuxInput& in, Boxes& b) {
  const size_t stsd = b.BeginFull("stsd", 0, 0);
  b.U32(1);
  const size_t avc1 = b.Begin("avc1");
  b.Zeros(6);
  b.U16(1);  // data_reference_index
  b.Zeros(16);
  b.U16(in.width);
  b.U16(in.height);
  b.U32(0x00480000);  // 72 dpi
  b.U32(0x00480000);
  b.U32(0);
  b.U16(1);     // frame_count
  b.Zeros(32);  // compressorname
  b.U16(0x0018);
  b.U16(0xffff);
  const size_t avcc = b.Begin("avcC");
  b.U8(1);
  b.U8(in.sps[1]);  // profile_idc, constraint flags, level_idc
  b.U8(in.sps[2]);
  b.U8(in.sps[3]);
  b.U8(0xfc | 3);  // 4-byte NAL lengths
  b.U8(0xe0 | 1);
  b.U16(in.sps.size());
  b.Bytes(in.sps);
  b.U8(1);
  b.U16(in.pps.size());
  b.Bytes(in.pps);
  // High profiles and above add chroma format and bit depths (14496-15 §5.3.3.1): 4:2:0, 8 bits,
  // no SPS extensions.
  const uint8_t profile = static_cast<uint8_t>(in.sps[1]);
  if (profile != 66 && profile != 77 && profile != 88) {
    b.U8(0xfc | 1);
    b.U8(0xf8 | 0);
    b.U8(0xf8 | 0);
    b.U8(0);
  }
  b.End(avcc);
  const size_t colr = b.Begin("colr");  // BT.601 (SMPTE 170M), limited range, as the VUI says
  b.Bytes("nclx");
  b.U16(6), b.U16(6), b.U16(6), b.U8(0);
  b.End(colr);
  b.End(avc1);
  b.End(stsd);
}

void WriteSampleTables(const MuxInput& in, uint64_t mdat_base, bool co64, Boxes& b) {
  const std::vector<Sample>& s = *in.samples;
  const size_t stbl = b.Begin("stbl");
  WriteSampleDescription(in, b);
  if (s.empty()) {  // a fragmented file's moov: every sample is described by its fragment
    size_t at = b.BeginFull("stts", 0, 0);
    b.U32(0);
    b.End(at);
    at = b.BeginFull("stsc", 0, 0);
    b.U32(0);
    b.End(at);
    at = b.BeginFull("stsz", 0, 0);
    b.U32(0), b.U32(0);
    b.End(at);
    at = b.BeginFull("stco", 0, 0);
    b.U32(0);
    b.End(at);
    b.End(stbl);
    return;
  }
  std::vector<int64_t> deltas, offsets;
  for (size_t i = 0; i < s.size(); ++i) {
    deltas.push_back((i + 1 < s.size() ? s[i + 1].dts - s[i].dts : 1) * 1000);
    offsets.push_back((s[i].pts - s[i].dts) * 1000);
  }
  size_t at = b.BeginFull("stts", 0, 0);
  const auto delta_runs = Runs(deltas);
  b.U32(delta_runs.size());
  for (auto [n, v] : delta_runs) b.U32(n), b.U32(static_cast<uint32_t>(v));
  b.End(at);
  if (std::any_of(offsets.begin(), offsets.end(), [](int64_t v) { return v != 0; })) {
    at = b.BeginFull("ctts", 0, 0);
    const auto offset_runs = Runs(offsets);
    b.U32(offset_runs.size());
    for (auto [n, v] : offset_runs) b.U32(n), b.U32(static_cast<uint32_t>(v));
    b.End(at);
  }
  at = b.BeginFull("stss", 0, 0);
  b.U32(std::count_if(s.begin(), s.end(), [](const Sample& x) { return x.key; }));
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i].key) b.U32(i + 1);
  }
  b.End(at);
  // One chunk per second of video; samples are contiguous in mdat, in decode order.
  const size_t per_chunk = in.fps;
  const size_t chunks = (s.size() + per_chunk - 1) / per_chunk;
  at = b.BeginFull("stsc", 0, 0);
  const size_t tail = s.size() - (chunks - 1) * per_chunk;
  b.U32(tail == per_chunk || chunks == 1 ? 1 : 2);
  b.U32(1), b.U32(chunks == 1 ? tail : per_chunk), b.U32(1);
  if (tail != per_chunk && chunks > 1) b.U32(chunks), b.U32(tail), b.U32(1);
  b.End(at);
  at = b.BeginFull("stsz", 0, 0);
  b.U32(0);
  b.U32(s.size());
  for (const Sample& x : s) b.U32(x.size);
  b.End(at);
  at = b.BeginFull(co64 ? "co64" : "stco", 0, 0);
  b.U32(chunks);
  for (size_t c = 0; c < chunks; ++c) {
    const uint64_t offset = mdat_base + s[c * per_chunk].offset;
    co64 ? b.U64(offset) : b.U32(static_cast<uint32_t>(offset));
  }
  b.End(at);
  b.End(stbl);
}

// moov for samples whose payload starts at file offset `mdat_base`.
// With no samples (a fragmented file's moov): durations 0, no edit list, empty sample tables and
// an mvex/trex that announces the fragments.
std::string Moov(const MuxInput& in, uint64_t mdat_base, bool co64) {
  const std::vector<Sample>& s = *in.samples;
  const bool fragmented = s.empty();
  const int64_t first_dts = fragmented ? 0 : s.front().dts;
  const int64_t frames = static_cast<int64_t>(s.size());
  int64_t first_pts = fragmented ? 0 : s.front().pts;
  for (const Sample& x : s) first_pts = std::min(first_pts, x.pts);
  // Media timescale fps·1000: every frame lasts 1000 ticks.
  const uint32_t media_duration =
      fragmented ? 0 : static_cast<uint32_t>((s.back().dts - first_dts + 1) * 1000);
  const uint32_t movie_duration = static_cast<uint32_t>((frames * 1000 + in.fps / 2) / in.fps);
  Boxes b;
  const size_t moov = b.Begin("moov");
  size_t at = b.BeginFull("mvhd", 0, 0);
  b.U32(0), b.U32(0), b.U32(1000), b.U32(movie_duration);
  b.U32(0x00010000), b.U16(0x0100), b.Zeros(10);
  b.Matrix();
  b.Zeros(24);
  b.U32(2);  // next_track_ID
  b.End(at);
  const size_t trak = b.Begin("trak");
  at = b.BeginFull("tkhd", 0, 3);  // enabled, in movie
  b.U32(0), b.U32(0), b.U32(1), b.U32(0), b.U32(movie_duration);
  b.Zeros(8);
  b.U16(0), b.U16(0), b.U16(0), b.U16(0);
  b.Matrix();
  b.U32(static_cast<uint32_t>(in.width) << 16), b.U32(static_cast<uint32_t>(in.height) << 16);
  b.End(at);
  // B-frames delay presentation against decode; the edit list starts playback at the first
  // presented frame, so the video starts at 0.
  if (!fragmented) {
    const size_t edts = b.Begin("edts");
    at = b.BeginFull("elst", 0, 0);
    b.U32(1), b.U32(movie_duration), b.U32(static_cast<uint32_t>((first_pts - first_dts) * 1000));
    b.U16(1), b.U16(0);
    b.End(at);
    b.End(edts);
  }
  const size_t mdia = b.Begin("mdia");
  at = b.BeginFull("mdhd", 0, 0);
  b.U32(0), b.U32(0), b.U32(static_cast<uint32_t>(in.fps) * 1000), b.U32(media_duration);
  b.U16(0x55c4), b.U16(0);  // language "und"
  b.End(at);
  at = b.BeginFull("hdlr", 0, 0);
  b.U32(0), b.Bytes("vide"), b.Zeros(12), b.Bytes(std::string_view("VideoHandler", 13));
  b.End(at);
  const size_t minf = b.Begin("minf");
  at = b.BeginFull("vmhd", 0, 1);
  b.Zeros(8);
  b.End(at);
  const size_t dinf = b.Begin("dinf");
  at = b.BeginFull("dref", 0, 0);
  b.U32(1);
  b.End(b.BeginFull("url ", 0, 1));  // media in this file
  b.End(at);
  b.End(dinf);
  WriteSampleTables(in, mdat_base, co64, b);
  b.End(minf);
  b.End(mdia);
  b.End(trak);
  if (fragmented) {
    const size_t mvex = b.Begin("mvex");
    at = b.BeginFull("trex", 0, 0);
    b.U32(1);     // track_ID
    b.U32(1);     // default_sample_description_index
    b.U32(1000);  // default_sample_duration: one frame
    b.U32(0);     // default_sample_size
    b.U32(0);     // default_sample_flags
    b.End(at);
    b.End(mvex);
  }
  b.End(moov);
  return std::move(b.out());
}

// ftyp + moov of a fragmented file (ISO/IEC 14496-12 §8.8): the track and its avcC, no samples.
std::string InitSegment(const MuxInput& in) {
  Boxes b;
  const size_t at = b.Begin("ftyp");
  b.Bytes("isom"), b.U32(0x200), b.Bytes("isomiso6avc1mp41");
  b.End(at);
  return b.out() + Moov(in, 0, false);
}

// One movie fragment: moof (mfhd, traf with tfhd default-base-is-moof, tfdt, trun with each
// sample's duration, size, flags and, with B-frames, composition offset) then mdat with
// `payload`, which holds the samples back to back. `first_dts` is the file's first decode time.
absl::StatusOr<std::string> Fragment(uint32_t sequence, const Sample* s, size_t n,
                                     int64_t first_dts, std::string_view payload) {
  if (payload.size() + 8 > std::numeric_limits<uint32_t>::max()) {
    return absl::InternalError("video: one MP4 fragment of 4 GiB or more");
  }
  bool reordered = false;
  for (size_t i = 0; i < n; ++i) reordered |= s[i].pts != s[i].dts;
  Boxes b;
  const size_t moof = b.Begin("moof");
  size_t at = b.BeginFull("mfhd", 0, 0);
  b.U32(sequence);
  b.End(at);
  const size_t traf = b.Begin("traf");
  at = b.BeginFull("tfhd", 0, 0x020000);  // default-base-is-moof
  b.U32(1);
  b.End(at);
  at = b.BeginFull("tfdt", 1, 0);
  b.U64(static_cast<uint64_t>(s[0].dts - first_dts) * 1000);
  b.End(at);
  // data-offset, sample-duration, -size, -flags (+ composition offsets, signed in version 1).
  at = b.BeginFull("trun", reordered ? 1 : 0, 0x000701 | (reordered ? 0x000800 : 0));
  b.U32(static_cast<uint32_t>(n));
  const size_t data_offset = b.out().size();
  b.U32(0);
  for (size_t i = 0; i < n; ++i) {
    b.U32(static_cast<uint32_t>((i + 1 < n ? s[i + 1].dts - s[i].dts : 1) * 1000));
    b.U32(s[i].size);
    // sync: depends on no other sample; else depends on others, non-sync (§8.8.3.1).
    b.U32(s[i].key ? 0x02000000u : 0x01010000u);
    if (reordered) b.U32(static_cast<uint32_t>((s[i].pts - s[i].dts) * 1000));
  }
  b.End(at);
  b.End(traf);
  b.End(moof);
  std::string& out = b.out();
  const uint32_t offset = static_cast<uint32_t>(out.size() + 8);  // past the mdat header
  for (int i = 0; i < 4; ++i) out[data_offset + i] = static_cast<char>(offset >> (24 - 8 * i));
  b.U32(static_cast<uint32_t>(payload.size() + 8)), b.Bytes("mdat");
  b.Bytes(payload);
  return std::move(out);
}

// ftyp, moov, mdat (with `payload`, which holds the samples at their offsets).
std::string Mux(const MuxInput& in, std::string payload) {
  Boxes ftyp;
  const size_t at = ftyp.Begin("ftyp");
  ftyp.Bytes("isom"), ftyp.U32(0x200), ftyp.Bytes("isomiso2avc1mp41");
  ftyp.End(at);
  const bool large = payload.size() + 8 > std::numeric_limits<uint32_t>::max();
  const uint64_t header = large ? 16 : 8;
  std::string moov = Moov(in, 0, false);
  uint64_t base = ftyp.out().size() + moov.size() + header;
  const bool co64 = base + payload.size() > std::numeric_limits<uint32_t>::max();
  if (co64) base = ftyp.out().size() + Moov(in, 0, true).size() + header;
  moov = Moov(in, base, co64);
  std::string out = std::move(ftyp.out());
  out.reserve(base + payload.size());
  out += moov;
  Boxes mdat;
  if (large) {
    mdat.U32(1), mdat.Bytes("mdat"), mdat.U64(payload.size() + 16);
  } else {
    mdat.U32(static_cast<uint32_t>(payload.size() + 8)), mdat.Bytes("mdat");
  }
  out += mdat.out();
  out += payload;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// x264.

class Mp4Writer::Impl {
 public:
  ~Impl() {
    if (encoder_ != nullptr) x264_encoder_close(encoder_);
  }
  absl::Status Open(int width, int height, const Mp4Options& options);
  absl::Status AddFrames(const Tensor& frames);
  absl::Status AddI420(const Tensor& pictures);
  absl::StatusOr<std::string> Finish();
  absl::StatusOr<std::string> TakeFragment();
  int64_t frames_added() const { return next_pts_; }
  // The opened size when the writer runs an FFmpeg stream instead (this Impl is then unused).
  int width_for_stream = 0;
  int height_for_stream = 0;

 private:
  static void Log(void* self, int level, const char* format, va_list args);
  absl::Status X264Error(const char* what);
  absl::Status Encode(x264_picture_t* picture);  // nullptr drains one delayed frame
  absl::Status CutFragment();                    // fragmented: the new samples → file_
  absl::Status CheckCount(int64_t count) const;
  absl::Status EncodePictures(const uint8_t* yuv, int64_t count);  // I420, back to back

  x264_t* encoder_ = nullptr;
  int width_ = 0;
  int height_ = 0;
  int fps_ = 0;
  bool finished_ = false;
  int64_t next_pts_ = 0;
  std::string sps_, pps_, sei_;
  std::string payload_;  // mdat contents (fragmented: of the samples not in a fragment yet)
  std::vector<Sample> samples_;
  // Fragmented (Mp4Options::fragmented): the file so far (init segment, then whole fragments),
  // how much of it TakeFragment has handed out, samples already in fragments, next sequence.
  bool fragmented_ = false;
  std::string file_;
  size_t taken_ = 0;
  size_t fragmented_samples_ = 0;
  uint32_t sequence_ = 1;
  std::vector<uint8_t> yuv_;  // kFramesPerBatch I420 pictures
  std::mutex log_mu_;
  std::string last_log_;  // x264's last error line (it may log from its own threads)
};

void Mp4Writer::Impl::Log(void* self, int level, const char* format, va_list args) {
  if (level > X264_LOG_ERROR) return;
  char line[512];
  std::vsnprintf(line, sizeof(line), format, args);
  auto* impl = static_cast<Impl*>(self);
  std::lock_guard<std::mutex> lock(impl->log_mu_);
  impl->last_log_ = line;
  while (!impl->last_log_.empty() && impl->last_log_.back() == '\n') impl->last_log_.pop_back();
}

absl::Status Mp4Writer::Impl::X264Error(const char* what) {
  std::lock_guard<std::mutex> lock(log_mu_);
  return absl::InternalError(
      absl::StrCat("video: ", what, " failed", last_log_.empty() ? "" : ": ", last_log_));
}

absl::Status Mp4Writer::Impl::Open(int width, int height, const Mp4Options& options) {
  if (encoder_ != nullptr || finished_) {
    return absl::FailedPreconditionError("Mp4Writer: Open called twice");
  }
  TV_RETURN_IF_ERROR(CheckSize(width, height));
  TV_RETURN_IF_ERROR(CheckOptions(options));
  x264_param_t p;
  // Fragmented: "zerolatency" (no B-frames, threads over the slices of a frame, no lookahead
  // thread), so frames leave x264 with a delay of only the rate-control lookahead, which is set
  // back to kFragmentLookahead frames with mb-tree on: without it the file is ~2.8x larger at
  // the same quality (docs/design.md §10.4).
  if (x264_param_default_preset(&p, options.preset.c_str(),
                                options.fragmented ? "zerolatency" : nullptr) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("preset: \"", options.preset, "\" rejected"));
  }
  p.pf_log = &Impl::Log;
  p.p_log_private = this;
  p.i_log_level = X264_LOG_ERROR;
  p.i_threads = X264_THREADS_AUTO;  // frame threads, 1.5 per core
  // Debian's x264 (r3095) gives heap-dependent output with its AVX-512 code: the same 96×64 clip
  // encoded twice in one process came out different, also with one thread, and the same with
  // AVX-512 off. Off for repeatable files; it cost ≤ 5% at 480p here.
  p.cpu &= ~X264_CPU_AVX512;
  if (options.fragmented) {
    p.rc.b_mb_tree = 1;
    p.rc.i_lookahead = kFragmentLookahead;
  }
  p.i_width = width;
  p.i_height = height;
  p.i_csp = X264_CSP_I420;
  p.i_fps_num = static_cast<uint32_t>(options.fps);
  p.i_fps_den = 1;
  p.i_timebase_num = 1;
  p.i_timebase_den = static_cast<uint32_t>(options.fps);
  p.b_vfr_input = 0;
  p.b_repeat_headers = 0;  // SPS/PPS go to avcC
  p.b_annexb = 0;          // 4-byte NAL lengths, as MP4 samples carry them
  p.rc.i_rc_method = X264_RC_CRF;
  p.rc.f_rf_constant = static_cast<float>(options.crf);
  p.vui.i_colorprim = 6;  // SMPTE 170M (BT.601 525), as the FFmpeg path tags it
  p.vui.i_transfer = 6;
  p.vui.i_colmatrix = 6;
  p.vui.b_fullrange = 0;
  p.vui.i_chroma_loc = 1;  // centre, where colour::RgbToI420 puts chroma
  // crf 0 is lossless, which High does not allow; x264 then picks High 4:4:4 Predictive itself
  // (as FFmpeg's libx264 wrapper lets it).
  if (options.crf > 0 && x264_param_apply_profile(&p, "high") < 0) {
    return X264Error("x264_param_apply_profile(high)");
  }
  encoder_ = x264_encoder_open(&p);
  if (encoder_ == nullptr) return X264Error("x264_encoder_open");
  x264_nal_t* nals = nullptr;
  int count = 0;
  if (x264_encoder_headers(encoder_, &nals, &count) < 0) return X264Error("x264_encoder_headers");
  for (int i = 0; i < count; ++i) {
    const char* data = reinterpret_cast<const char*>(nals[i].p_payload);
    if (nals[i].i_type == NAL_SPS) sps_.assign(data + 4, nals[i].i_payload - 4);
    if (nals[i].i_type == NAL_PPS) pps_.assign(data + 4, nals[i].i_payload - 4);
    // x264's version SEI goes in front of the first sample, as FFmpeg does: decoders read the
    // encoder build from it.
    if (nals[i].i_type == NAL_SEI) sei_.append(data, nals[i].i_payload);
  }
  if (sps_.size() < 4 || pps_.empty()) {
    return absl::InternalError("video: x264 gave no SPS/PPS headers");
  }
  width_ = width;
  height_ = height;
  fps_ = options.fps;
  fragmented_ = options.fragmented;
  if (fragmented_) {
    const std::vector<Sample> none;
    file_ = InitSegment(MuxInput{width_, height_, fps_, sps_, pps_, &none});
  }
  return absl::OkStatus();
}

absl::Status Mp4Writer::Impl::CutFragment() {
  const size_t n = samples_.size() - fragmented_samples_;
  if (n == 0) return absl::OkStatus();
  TV_ASSIGN_OR_RETURN(const std::string fragment,
                      Fragment(sequence_++, samples_.data() + fragmented_samples_, n,
                               samples_.front().dts, payload_));
  file_ += fragment;
  payload_.clear();
  fragmented_samples_ = samples_.size();
  return absl::OkStatus();
}

absl::StatusOr<std::string> Mp4Writer::Impl::TakeFragment() {
  if (!fragmented_) {
    return absl::FailedPreconditionError("Mp4Writer: TakeFragment needs Mp4Options::fragmented");
  }
  if (!finished_) {
    if (encoder_ == nullptr) return absl::FailedPreconditionError("Mp4Writer: not open");
    TV_RETURN_IF_ERROR(CutFragment());
  }
  // Nothing before the first fragment: the first bytes handed out are a playable prefix.
  if (fragmented_samples_ == 0) return std::string();
  std::string out = file_.substr(taken_);
  taken_ = file_.size();
  return out;
}

absl::Status Mp4Writer::Impl::Encode(x264_picture_t* picture) {
  x264_nal_t* nals = nullptr;
  int count = 0;
  x264_picture_t out;
  const int size = x264_encoder_encode(encoder_, &nals, &count, picture, &out);
  if (size < 0) return X264Error("x264_encoder_encode");
  if (size == 0) return absl::OkStatus();
  Sample sample;
  sample.offset = static_cast<int64_t>(payload_.size());
  if (samples_.empty()) payload_ += sei_;
  // The NALs of one picture sit back to back from nals[0].p_payload (x264.h guarantees it).
  payload_.append(reinterpret_cast<const char*>(nals[0].p_payload), size);
  sample.size = static_cast<uint32_t>(payload_.size() - sample.offset);
  sample.pts = out.i_pts;
  sample.dts = out.i_dts;
  sample.key = out.b_keyframe != 0;
  if (!samples_.empty() && sample.dts <= samples_.back().dts) {
    return absl::InternalError(absl::StrCat("video: x264 decode times go back (", sample.dts,
                                            " after ", samples_.back().dts, ")"));
  }
  if (sample.pts < sample.dts) {
    return absl::InternalError(absl::StrCat("video: x264 frame presented (", sample.pts,
                                            ") before it is decoded (", sample.dts, ")"));
  }
  samples_.push_back(sample);
  return absl::OkStatus();
}

absl::Status Mp4Writer::Impl::CheckCount(int64_t count) const {
  if (encoder_ == nullptr || finished_) {
    return absl::FailedPreconditionError("Mp4Writer: adding frames needs an open writer");
  }
  if (next_pts_ + count > kMaxFrames) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames: more than ", kMaxFrames, " frames in one MP4"));
  }
  return absl::OkStatus();
}

absl::Status Mp4Writer::Impl::EncodePictures(const uint8_t* yuv, int64_t count) {
  const int64_t luma = static_cast<int64_t>(width_) * height_;
  const int64_t yuv_frame = luma * 3 / 2;
  for (int64_t f = 0; f < count; ++f) {
    x264_picture_t picture;
    x264_picture_init(&picture);
    // x264 copies the picture before x264_encoder_encode returns; it never writes to it.
    uint8_t* y = const_cast<uint8_t*>(yuv + f * yuv_frame);
    picture.img.i_csp = X264_CSP_I420;
    picture.img.i_plane = 3;
    picture.img.plane[0] = y;
    picture.img.plane[1] = y + luma;
    picture.img.plane[2] = y + luma + luma / 4;
    picture.img.i_stride[0] = width_;
    picture.img.i_stride[1] = width_ / 2;
    picture.img.i_stride[2] = width_ / 2;
    picture.i_pts = next_pts_++;
    TV_RETURN_IF_ERROR(Encode(&picture));
  }
  return absl::OkStatus();
}

absl::Status Mp4Writer::Impl::AddFrames(const Tensor& frames) {
  if (encoder_ == nullptr || finished_) {
    return absl::FailedPreconditionError("Mp4Writer: AddFrames needs an open writer");
  }
  TV_RETURN_IF_ERROR(CheckFrames(frames));
  if (frames.dim(1) != height_ || frames.dim(2) != width_) {
    return absl::InvalidArgumentError(absl::StrCat("frames: ", frames.Describe(), " is not ",
                                                   height_, "x", width_, " as opened"));
  }
  TV_RETURN_IF_ERROR(CheckCount(frames.dim(0)));
  const int64_t luma = static_cast<int64_t>(width_) * height_;
  const int64_t yuv_frame = luma * 3 / 2;
  const int64_t rgb_frame = luma * 3;
  const int64_t count = frames.dim(0);
  const uint8_t* rgb = frames.data<uint8_t>();
  for (int64_t first = 0; first < count; first += kFramesPerBatch) {
    const int64_t n = std::min<int64_t>(kFramesPerBatch, count - first);
    yuv_.resize(static_cast<size_t>(n * yuv_frame));
    colour::RgbToI420(rgb + first * rgb_frame, n, width_, height_, yuv_.data());
    TV_RETURN_IF_ERROR(EncodePictures(yuv_.data(), n));
  }
  return absl::OkStatus();
}

absl::Status Mp4Writer::Impl::AddI420(const Tensor& pictures) {
  TV_RETURN_IF_ERROR(internal::CheckI420(pictures, width_, height_));
  TV_RETURN_IF_ERROR(CheckCount(pictures.dim(0)));
  return EncodePictures(pictures.data<uint8_t>(), pictures.dim(0));
}

absl::StatusOr<std::string> Mp4Writer::Impl::Finish() {
  if (encoder_ == nullptr || finished_) {
    return absl::FailedPreconditionError("Mp4Writer: Finish needs an open writer");
  }
  finished_ = true;
  if (next_pts_ == 0) return absl::FailedPreconditionError("frames: none were added");
  while (x264_encoder_delayed_frames(encoder_) > 0) TV_RETURN_IF_ERROR(Encode(nullptr));
  x264_encoder_close(encoder_);
  encoder_ = nullptr;
  if (static_cast<int64_t>(samples_.size()) != next_pts_) {
    return absl::InternalError(
        absl::StrCat("video: x264 returned ", samples_.size(), " frames of ", next_pts_));
  }
  if (fragmented_) {
    TV_RETURN_IF_ERROR(CutFragment());
    return file_;
  }
  MuxInput in{width_, height_, fps_, std::move(sps_), std::move(pps_), &samples_};
  return Mux(in, std::move(payload_));
}

Mp4Writer::Mp4Writer() : impl_(std::make_unique<Impl>()) {}
Mp4Writer::~Mp4Writer() = default;
Mp4Writer::Mp4Writer(Mp4Writer&&) noexcept = default;
Mp4Writer& Mp4Writer::operator=(Mp4Writer&&) noexcept = default;

absl::Status Mp4Writer::Open(int width, int height, const Mp4Options& options) {
  if (encoder_ != Mp4Encoder::kAuto) {
    return absl::FailedPreconditionError("Mp4Writer: Open called twice");
  }
  TV_ASSIGN_OR_RETURN(const Mp4Encoder encoder, internal::ResolveStreamEncoder(options));
  if (encoder == Mp4Encoder::kX264) {
    TV_RETURN_IF_ERROR(impl_->Open(width, height, options));
  } else {
    TV_RETURN_IF_ERROR(CheckSize(width, height));
    TV_ASSIGN_OR_RETURN(stream_, internal::OpenFfmpegStream(encoder, width, height, options));
    impl_->width_for_stream = width;
    impl_->height_for_stream = height;
  }
  encoder_ = encoder;
  return absl::OkStatus();
}

absl::Status Mp4Writer::Open(int width, int height, int fps) {
  Mp4Options options;
  options.fps = fps;
  return Open(width, height, options);
}

absl::Status Mp4Writer::AddFrames(const Tensor& frames) {
  if (stream_ == nullptr) return impl_->AddFrames(frames);
  TV_RETURN_IF_ERROR(CheckFrames(frames));
  const int w = impl_->width_for_stream, h = impl_->height_for_stream;
  if (frames.dim(1) != h || frames.dim(2) != w) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames: ", frames.Describe(), " is not ", h, "x", w, " as opened"));
  }
  std::vector<uint8_t> yuv(static_cast<size_t>(frames.dim(0) * w * h * 3 / 2));
  colour::RgbToI420(frames.data<uint8_t>(), frames.dim(0), w, h, yuv.data());
  return stream_->AddI420(yuv.data(), frames.dim(0));
}

absl::Status Mp4Writer::AddI420(const Tensor& pictures) {
  if (stream_ == nullptr) return impl_->AddI420(pictures);
  TV_RETURN_IF_ERROR(
      internal::CheckI420(pictures, impl_->width_for_stream, impl_->height_for_stream));
  return stream_->AddI420(pictures.data<uint8_t>(), pictures.dim(0));
}

absl::StatusOr<std::string> Mp4Writer::Finish() {
  return stream_ != nullptr ? stream_->Finish() : impl_->Finish();
}

absl::StatusOr<std::string> Mp4Writer::TakeFragment() {
  return stream_ != nullptr ? stream_->TakeFragment() : impl_->TakeFragment();
}

int64_t Mp4Writer::frames_added() const {
  return stream_ != nullptr ? stream_->frames_added() : impl_->frames_added();
}

Mp4Encoder Mp4Writer::encoder() const { return encoder_; }

absl::StatusOr<std::string> EncodeMp4X264(const Tensor& frames, const Mp4Options& options) {
  TV_RETURN_IF_ERROR(CheckFrames(frames));
  TV_RETURN_IF_ERROR(CheckOptions(options));
  Mp4Writer writer;
  TV_RETURN_IF_ERROR(
      writer.Open(static_cast<int>(frames.dim(2)), static_cast<int>(frames.dim(1)), options));
  TV_RETURN_IF_ERROR(writer.AddFrames(frames));
  return writer.Finish();
}

namespace internal {
bool HaveX264() { return true; }

absl::StatusOr<Mp4Encoder> ResolveStreamEncoder(const Mp4Options& options) {
  TV_ASSIGN_OR_RETURN(const Mp4Encoder encoder, ResolveMp4Encoder(options, Mp4Encoder::kAuto));
  if (encoder != Mp4Encoder::kAuto) return encoder;
  return ProbeNvenc().available ? Mp4Encoder::kNvenc : Mp4Encoder::kX264;
}
}  // namespace internal

}  // namespace turbovid::engine::video
