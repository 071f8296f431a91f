// FFmpeg helpers shared by the MP4 writer and the image decoder: error text, log silencing,
// frame allocation and memory-backed AVIOContexts.
#include "engine/video/ffmpeg_util.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>

#include "absl/strings/str_cat.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
}

namespace turbovid::engine::video::internal {
namespace {

constexpr int kIoBufferBytes = 64 * 1024;

// Resolves a seek request (whence may carry AVSEEK_SIZE / AVSEEK_FORCE) against a stream of
// `size` bytes at `pos`. Returns the new position, the size for AVSEEK_SIZE, or an AVERROR.
int64_t ResolveSeek(int64_t pos, int64_t size, int64_t offset, int whence) {
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return size;
  int64_t base = 0;
  switch (whence) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = pos;
      break;
    case SEEK_END:
      base = size;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if ((offset > 0 && base > std::numeric_limits<int64_t>::max() - offset)) return AVERROR(EINVAL);
  const int64_t target = base + offset;
  if (target < 0) return AVERROR(EINVAL);
  return target;
}

int WriteToFile(void* opaque, uint8_t* buf, int size) {
  auto* file = static_cast<MemoryFile*>(opaque);
  if (size <= 0) return 0;
  const size_t end = static_cast<size_t>(file->pos) + static_cast<size_t>(size);
  if (end > file->bytes.size()) file->bytes.resize(end, '\0');
  std::memcpy(file->bytes.data() + file->pos, buf, static_cast<size_t>(size));
  file->pos = static_cast<int64_t>(end);
  return size;
}

int ReadFromCursor(void* opaque, uint8_t* buf, int size) {
  auto* cursor = static_cast<MemoryFileCursor*>(opaque);
  const std::string& bytes = cursor->file->bytes;
  const int64_t left = static_cast<int64_t>(bytes.size()) - cursor->pos;
  if (left <= 0) return AVERROR_EOF;
  const int n = static_cast<int>(std::min<int64_t>(left, size));
  std::memcpy(buf, bytes.data() + cursor->pos, static_cast<size_t>(n));
  cursor->pos += n;
  return n;
}

int64_t SeekCursor(void* opaque, int64_t offset, int whence) {
  auto* cursor = static_cast<MemoryFileCursor*>(opaque);
  const int64_t r =
      ResolveSeek(cursor->pos, static_cast<int64_t>(cursor->file->bytes.size()), offset, whence);
  if (r >= 0 && (whence & ~AVSEEK_FORCE) != AVSEEK_SIZE) cursor->pos = r;
  return r;
}

int64_t SeekFile(void* opaque, int64_t offset, int whence) {
  auto* file = static_cast<MemoryFile*>(opaque);
  const int64_t r =
      ResolveSeek(file->pos, static_cast<int64_t>(file->bytes.size()), offset, whence);
  if (r >= 0 && (whence & ~AVSEEK_FORCE) != AVSEEK_SIZE) file->pos = r;
  return r;
}

int ReadFromView(void* opaque, uint8_t* buf, int size) {
  auto* view = static_cast<MemoryView*>(opaque);
  const int64_t left = view->size - view->pos;
  if (left <= 0) return AVERROR_EOF;
  const int n = static_cast<int>(std::min<int64_t>(left, size));
  std::memcpy(buf, view->data + view->pos, static_cast<size_t>(n));
  view->pos += n;
  return n;
}

int64_t SeekView(void* opaque, int64_t offset, int whence) {
  auto* view = static_cast<MemoryView*>(opaque);
  const int64_t r = ResolveSeek(view->pos, view->size, offset, whence);
  if (r >= 0 && (whence & ~AVSEEK_FORCE) != AVSEEK_SIZE) view->pos = std::min(r, view->size);
  return r;
}

absl::StatusOr<IoContextPtr> OpenIo(void* opaque, bool writable, int (*read)(void*, uint8_t*, int),
                                    int (*write)(void*, uint8_t*, int),
                                    int64_t (*seek)(void*, int64_t, int)) {
  auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferBytes));
  if (buffer == nullptr)
    return absl::ResourceExhaustedError("video: out of memory for an I/O buffer");
  AVIOContext* io =
      avio_alloc_context(buffer, kIoBufferBytes, writable ? 1 : 0, opaque, read, write, seek);
  if (io == nullptr) {
    av_free(buffer);
    return absl::ResourceExhaustedError("video: out of memory for an I/O context");
  }
  return IoContextPtr(io);
}

}  // namespace

void IoContextDeleter::operator()(AVIOContext* io) const {
  if (io == nullptr) return;
  av_freep(&io->buffer);
  avio_context_free(&io);
}

void SilenceFfmpegLogs() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

absl::Status FfmpegError(int err, std::string_view what, absl::StatusCode bad_input_code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(err, text, sizeof(text)) < 0) {
    std::snprintf(text, sizeof(text), "FFmpeg error %d", err);
  }
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (err == AVERROR(ENOMEM)) {
    code = absl::StatusCode::kResourceExhausted;
  } else if (err == AVERROR_INVALIDDATA || err == AVERROR_EOF || err == AVERROR(EINVAL) ||
             err == AVERROR_PATCHWELCOME || err == AVERROR_DECODER_NOT_FOUND ||
             err == AVERROR_DEMUXER_NOT_FOUND || err == AVERROR_STREAM_NOT_FOUND) {
    code = bad_input_code;
  }
  return absl::Status(code, absl::StrCat(std::string(what), ": ", text));
}

absl::StatusOr<IoContextPtr> OpenMemoryWriter(MemoryFile* file) {
  return OpenIo(file, /*writable=*/true, nullptr, &WriteToFile, &SeekFile);
}

absl::StatusOr<IoContextPtr> OpenMemoryFileReader(MemoryFileCursor* cursor) {
  return OpenIo(cursor, /*writable=*/false, &ReadFromCursor, nullptr, &SeekCursor);
}

absl::StatusOr<IoContextPtr> OpenMemoryReader(MemoryView* view) {
  return OpenIo(view, /*writable=*/false, &ReadFromView, nullptr, &SeekView);
}

absl::Status CheckRgbTensor(const Tensor& t, int rank, std::string_view field, int64_t max_dim) {
  const std::string name(field);
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(name, ": tensor is empty"));
  if (t.device() != Device::kCpu || t.dtype() != DType::kU8 || t.rank() != rank || t.dim(-1) != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", t.Describe(), " is not a host U8 RGB ",
                     rank == 4 ? "[F, H, W, 3]" : "[H, W, 3]", " tensor"));
  }
  for (int i = 0; i + 1 < rank; ++i) {
    if (t.dim(i) < 1 || t.dim(i) > max_dim) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": dim ", i, " of ", t.Describe(), " is outside [1, ", max_dim, "]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FramePtr> AllocFrame(AVPixelFormat format, int width, int height) {
  FramePtr frame(av_frame_alloc());
  if (frame == nullptr) return absl::ResourceExhaustedError("video: out of memory for a frame");
  frame->format = format;
  frame->width = width;
  frame->height = height;
  const int err = av_frame_get_buffer(frame.get(), 0);
  if (err < 0) return FfmpegError(err, "video: av_frame_get_buffer");
  return frame;
}

}  // namespace turbovid::engine::video::internal
