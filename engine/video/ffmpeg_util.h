// Private to engine/video: RAII owners for FFmpeg objects, FFmpeg error → absl::Status, and
// AVIOContexts over memory (a growable, seekable write buffer and a read-only byte view).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/tensor.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

namespace turbovid::engine::video::internal {

struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
// An output muxer context; its custom AVIOContext is owned separately (IoContextPtr).
struct OutputFormatDeleter {
  void operator()(AVFormatContext* s) const { avformat_free_context(s); }
};
// A demuxer context opened by avformat_open_input.
struct InputFormatDeleter {
  void operator()(AVFormatContext* s) const { avformat_close_input(&s); }
};
// A custom AVIOContext; FFmpeg may have replaced its buffer, so free the current one.
struct IoContextDeleter {
  void operator()(AVIOContext* io) const;
};

using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using IoContextPtr = std::unique_ptr<AVIOContext, IoContextDeleter>;

// Turns FFmpeg's stderr logging off once per process: failures reach callers as statuses.
void SilenceFfmpegLogs();

// `what: <av_strerror text>` with a code chosen from the error (ENOMEM → ResourceExhausted,
// AVERROR_INVALIDDATA and friends → `bad_input_code`, anything else → Internal).
absl::Status FfmpegError(int err, std::string_view what,
                         absl::StatusCode bad_input_code = absl::StatusCode::kInternal);

// Seekable in-memory file for muxers. `bytes` grows as the muxer writes; seeking past the end
// and writing zero-fills the gap like a sparse file would.
struct MemoryFile {
  std::string bytes;
  int64_t pos = 0;
};
// Write-and-seek AVIOContext over `file` (which must outlive it).
absl::StatusOr<IoContextPtr> OpenMemoryWriter(MemoryFile* file);
// A second, read-only position in a MemoryFile (the MP4 muxer rereads its output to move the
// moov box to the front).
struct MemoryFileCursor {
  const MemoryFile* file = nullptr;
  int64_t pos = 0;
};
// Read-and-seek AVIOContext over the current contents of `cursor->file` (reads see later
// writes, as a file opened twice would).
absl::StatusOr<IoContextPtr> OpenMemoryFileReader(MemoryFileCursor* cursor);

// Read-only view of caller-owned bytes.
struct MemoryView {
  const uint8_t* data = nullptr;
  int64_t size = 0;
  int64_t pos = 0;
};
absl::StatusOr<IoContextPtr> OpenMemoryReader(MemoryView* view);

// Checks `t` is a host U8 tensor of `rank` dims ending in 3 (RGB) with every other dim in
// [1, max_dim]; errors are InvalidArgument naming `field`.
absl::Status CheckRgbTensor(const Tensor& t, int rank, std::string_view field, int64_t max_dim);

// Allocates an AVFrame with its own buffers.
absl::StatusOr<FramePtr> AllocFrame(AVPixelFormat format, int width, int height);

}  // namespace turbovid::engine::video::internal
