// Frames → MP4 in memory: RGB24 → yuv420p (swscale), H.264 (libx264), mp4 muxer writing into a
// std::string through a seekable custom AVIOContext, moov moved to the front (faststart).
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/video/ffmpeg_util.h"
#include "engine/video/mp4_x264.h"
#include "engine/video/video.h"

extern "C" {
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

namespace turbovid::engine::video {
namespace {

using internal::CodecContextPtr;
using internal::FfmpegError;
using internal::FramePtr;
using internal::IoContextPtr;
using internal::MemoryFile;
using internal::OutputFormatPtr;
using internal::PacketPtr;
using internal::SwsPtr;

constexpr int64_t kMaxSide = 8192;  // well inside libx264's and our int arithmetic's limits
constexpr std::array<const char*, 10> kPresets = {"ultrafast", "superfast", "veryfast", "faster",
                                                  "fast",      "medium",    "slow",     "slower",
                                                  "veryslow",  "placebo"};

struct DictFree {
  void operator()(AVDictionary* d) const { av_dict_free(&d); }
};

absl::Status CheckOptions(const Mp4Options& options) {
  if (options.fps < 1 || options.fps > 240) {
    return absl::InvalidArgumentError(absl::StrCat("fps: ", options.fps, " is outside [1, 240]"));
  }
  if (options.crf < 0 || options.crf > 51) {
    return absl::InvalidArgumentError(absl::StrCat("crf: ", options.crf, " is outside [0, 51]"));
  }
  if (std::find(kPresets.begin(), kPresets.end(), options.preset) == kPresets.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("preset: \"", options.preset, "\" is not an x264 preset"));
  }
  return absl::OkStatus();
}

// The mp4 muxer's faststart pass reopens its output by URL to read it back; these two callbacks
// hand it a second read cursor over the same in-memory file instead of touching the filesystem.
int OpenForReread(AVFormatContext* s, AVIOContext** pb, const char* /*url*/, int flags,
                  AVDictionary** /*options*/) {
  if ((flags & AVIO_FLAG_WRITE) != 0) return AVERROR(EPERM);
  auto cursor = std::make_unique<internal::MemoryFileCursor>();
  cursor->file = static_cast<const MemoryFile*>(s->opaque);
  auto io = internal::OpenMemoryFileReader(cursor.get());
  if (!io.ok()) return AVERROR(ENOMEM);
  *pb = io->release();
  cursor.release();  // owned by the AVIOContext from here; freed in CloseReread
  return 0;
}

int CloseReread(AVFormatContext* /*s*/, AVIOContext* pb) {
  if (pb == nullptr) return 0;
  delete static_cast<internal::MemoryFileCursor*>(pb->opaque);
  internal::IoContextDeleter()(pb);
  return 0;
}

// An encoder context for yuv420p pictures of width x height at fps, tagged BT.601 limited range
// (what swscale's default RGB conversion and engine/core/colour.h both produce) so players agree.
absl::StatusOr<CodecContextPtr> NewYuv420Encoder(const AVCodec* codec, int width, int height,
                                                 int fps) {
  CodecContextPtr encoder(avcodec_alloc_context3(codec));
  if (encoder == nullptr) return absl::ResourceExhaustedError("video: out of memory for an encoder");
  AVCodecContext* c = encoder.get();
  c->width = width;
  c->height = height;
  c->pix_fmt = AV_PIX_FMT_YUV420P;
  c->time_base = AVRational{1, fps};
  c->framerate = AVRational{fps, 1};
  c->colorspace = AVCOL_SPC_SMPTE170M;
  c->color_primaries = AVCOL_PRI_SMPTE170M;
  c->color_trc = AVCOL_TRC_SMPTE170M;
  c->color_range = AVCOL_RANGE_MPEG;
  return encoder;
}

// An mp4 muxer writing through `io`, with `file` (the in-memory output) behind the callbacks above
// for the faststart pass's read-back.
absl::StatusOr<OutputFormatPtr> NewMp4Muxer(AVIOContext* io, MemoryFile* file) {
  AVFormatContext* raw = nullptr;
  const int err = avformat_alloc_output_context2(&raw, nullptr, "mp4", nullptr);
  if (err < 0 || raw == nullptr) return FfmpegError(err, "video: creating the mp4 muxer");
  OutputFormatPtr muxer(raw);
  muxer->pb = io;
  muxer->flags |= AVFMT_FLAG_CUSTOM_IO;
  muxer->opaque = file;
  muxer->io_open = &OpenForReread;
  muxer->io_close2 = &CloseReread;
  return muxer;
}

// Everything one encode owns; members are destroyed in reverse order, muxer before its I/O.
class FfmpegMp4Writer {
 public:
  absl::Status Open(int width, int height, const Mp4Options& options);
  absl::Status AddFrame(const uint8_t* rgb, int64_t pts);  // rgb: [H, W, 3] U8
  absl::StatusOr<std::string> Finish();

 private:
  absl::Status OpenEncoder(int width, int height, const Mp4Options& options);
  absl::Status OpenMuxer(const Mp4Options& options);
  absl::Status SendAndDrain(const AVFrame* frame);  // nullptr flushes the encoder

  MemoryFile file_;
  IoContextPtr io_;
  OutputFormatPtr muxer_;
  CodecContextPtr encoder_;
  AVStream* stream_ = nullptr;  // owned by muxer_
  SwsPtr sws_;
  FramePtr yuv_;
  PacketPtr packet_;
};

absl::Status FfmpegMp4Writer::OpenEncoder(int width, int height, const Mp4Options& options) {
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (codec == nullptr) {
    return absl::UnimplementedError("video: this FFmpeg has no libx264 encoder");
  }
  TV_ASSIGN_OR_RETURN(encoder_, NewYuv420Encoder(codec, width, height, options.fps));
  AVCodecContext* c = encoder_.get();
  if ((muxer_->oformat->flags & AVFMT_GLOBALHEADER) != 0) {
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }
  int err = av_opt_set(c->priv_data, "preset", options.preset.c_str(), 0);
  if (err < 0) return FfmpegError(err, "preset", absl::StatusCode::kInvalidArgument);
  err = av_opt_set_double(c->priv_data, "crf", options.crf, 0);
  if (err < 0) return FfmpegError(err, "crf", absl::StatusCode::kInvalidArgument);
  err = avcodec_open2(c, codec, nullptr);
  if (err < 0) return FfmpegError(err, "video: opening libx264");
  return absl::OkStatus();
}

absl::Status FfmpegMp4Writer::OpenMuxer(const Mp4Options& options) {
  stream_ = avformat_new_stream(muxer_.get(), nullptr);
  if (stream_ == nullptr) return absl::ResourceExhaustedError("video: out of memory for a stream");
  int err = avcodec_parameters_from_context(stream_->codecpar, encoder_.get());
  if (err < 0) return FfmpegError(err, "video: copying codec parameters");
  stream_->time_base = encoder_->time_base;
  stream_->avg_frame_rate = AVRational{options.fps, 1};
  AVDictionary* raw_opts = nullptr;
  err = av_dict_set(&raw_opts, "movflags", "+faststart", 0);
  std::unique_ptr<AVDictionary, DictFree> opts(raw_opts);
  if (err < 0) return FfmpegError(err, "video: mp4 options");
  raw_opts = opts.release();
  err = avformat_write_header(muxer_.get(), &raw_opts);
  opts.reset(raw_opts);
  if (err < 0) return FfmpegError(err, "video: writing the mp4 header");
  return absl::OkStatus();
}

absl::Status FfmpegMp4Writer::Open(int width, int height, const Mp4Options& options) {
  internal::SilenceFfmpegLogs();
  TV_ASSIGN_OR_RETURN(io_, internal::OpenMemoryWriter(&file_));
  TV_ASSIGN_OR_RETURN(muxer_, NewMp4Muxer(io_.get(), &file_));
  TV_RETURN_IF_ERROR(OpenEncoder(width, height, options));
  TV_RETURN_IF_ERROR(OpenMuxer(options));
  sws_.reset(sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, nullptr, nullptr,
                            nullptr));
  if (sws_ == nullptr) return absl::InternalError("video: sws_getContext RGB24 → yuv420p failed");
  TV_ASSIGN_OR_RETURN(yuv_, internal::AllocFrame(AV_PIX_FMT_YUV420P, width, height));
  packet_.reset(av_packet_alloc());
  if (packet_ == nullptr) return absl::ResourceExhaustedError("video: out of memory for a packet");
  return absl::OkStatus();
}

absl::Status FfmpegMp4Writer::SendAndDrain(const AVFrame* frame) {
  int err = avcodec_send_frame(encoder_.get(), frame);
  if (err < 0) return FfmpegError(err, "video: libx264 send_frame");
  while (true) {
    err = avcodec_receive_packet(encoder_.get(), packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return absl::OkStatus();
    if (err < 0) return FfmpegError(err, "video: libx264 receive_packet");
    av_packet_rescale_ts(packet_.get(), encoder_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    err = av_interleaved_write_frame(muxer_.get(), packet_.get());  // takes the packet's data
    if (err < 0) return FfmpegError(err, "video: muxing a packet");
  }
}

absl::Status FfmpegMp4Writer::AddFrame(const uint8_t* rgb, int64_t pts) {
  // The encoder may still reference the previous picture's buffers.
  int err = av_frame_make_writable(yuv_.get());
  if (err < 0) return FfmpegError(err, "video: av_frame_make_writable");
  const uint8_t* const src[1] = {rgb};
  const int src_stride[1] = {3 * yuv_->width};
  const int rows =
      sws_scale(sws_.get(), src, src_stride, 0, yuv_->height, yuv_->data, yuv_->linesize);
  if (rows != yuv_->height) return absl::InternalError("video: sws_scale RGB24 → yuv420p failed");
  yuv_->pts = pts;
  return SendAndDrain(yuv_.get());
}

absl::StatusOr<std::string> FfmpegMp4Writer::Finish() {
  TV_RETURN_IF_ERROR(SendAndDrain(nullptr));
  int err = av_write_trailer(muxer_.get());
  if (err < 0) return FfmpegError(err, "video: writing the mp4 trailer");
  avio_flush(io_.get());
  if (io_->error < 0) return FfmpegError(io_->error, "video: flushing the mp4 bytes");
  return std::move(file_.bytes);
}

// ---------------------------------------------------------------------------------------------
// FFmpeg's encoders fed with our I420 pictures (Mp4Writer with kFfmpeg or kNvenc).

// Appends everything the muxer writes (a non-seekable output: fragmented MP4 is written front to
// back, so handed-out bytes never change).
int AppendToString(void* opaque, uint8_t* buf, int size) {
  if (size > 0) static_cast<std::string*>(opaque)->append(reinterpret_cast<char*>(buf), size);
  return size;
}

class StreamWriter : public internal::FfmpegStream {
 public:
  absl::Status Open(Mp4Encoder encoder, int width, int height, const Mp4Options& options);
  absl::Status AddI420(const uint8_t* pictures, int64_t count) override;
  absl::StatusOr<std::string> TakeFragment() override;
  absl::StatusOr<std::string> Finish() override;
  int64_t frames_added() const override { return next_pts_; }

 private:
  absl::Status SendAndDrain(const AVFrame* frame);  // nullptr flushes the encoder

  const char* codec_name_ = "";
  bool fragmented_ = false;
  bool finished_ = false;
  int64_t next_pts_ = 0;
  int64_t packets_ = 0;  // muxed so far
  int64_t packets_in_fragments_ = 0;
  // Not fragmented: a seekable in-memory file (moov moved to the front). Fragmented: the bytes
  // written so far, and how many TakeFragment handed out.
  MemoryFile file_;
  std::string appended_;
  size_t taken_ = 0;
  IoContextPtr io_;
  OutputFormatPtr muxer_;
  CodecContextPtr encoder_;
  AVStream* stream_ = nullptr;  // owned by muxer_
  FramePtr frame_;
  PacketPtr packet_;
};

absl::Status StreamWriter::Open(Mp4Encoder encoder, int width, int height,
                                const Mp4Options& options) {
  internal::SilenceFfmpegLogs();
  TV_RETURN_IF_ERROR(CheckOptions(options));
  fragmented_ = options.fragmented;
  codec_name_ = encoder == Mp4Encoder::kNvenc ? "h264_nvenc" : "libx264";
  if (fragmented_) {
    auto* buffer = static_cast<unsigned char*>(av_malloc(64 * 1024));
    if (buffer == nullptr) return absl::ResourceExhaustedError("video: out of memory");
    AVIOContext* io =
        avio_alloc_context(buffer, 64 * 1024, 1, &appended_, nullptr, &AppendToString, nullptr);
    if (io == nullptr) {
      av_free(buffer);
      return absl::ResourceExhaustedError("video: out of memory for an I/O context");
    }
    io_.reset(io);
  } else {
    TV_ASSIGN_OR_RETURN(io_, internal::OpenMemoryWriter(&file_));
  }
  TV_ASSIGN_OR_RETURN(muxer_, NewMp4Muxer(io_.get(), &file_));

  const AVCodec* codec = avcodec_find_encoder_by_name(codec_name_);
  if (codec == nullptr) {
    return absl::UnimplementedError(absl::StrCat("video: this FFmpeg has no ", codec_name_));
  }
  TV_ASSIGN_OR_RETURN(encoder_, NewYuv420Encoder(codec, width, height, options.fps));
  AVCodecContext* c = encoder_.get();
  c->chroma_sample_location = AVCHROMA_LOC_CENTER;
  c->max_b_frames = 0;   // frames leave in order, a fragment at a time
  c->gop_size = 10'000;  // one IDR (frame 0), as the x264 path writes
  c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int err = 0;
  if (encoder == Mp4Encoder::kNvenc) {
    // Constant quality comparable to x264's crf; no lookahead delay, so a fragment holds every
    // frame added before it.
    err = av_opt_set(c->priv_data, "preset", "p4", 0);
    if (err >= 0) err = av_opt_set(c->priv_data, "rc", "vbr", 0);
    if (err >= 0) err = av_opt_set_int(c->priv_data, "cq", std::max(1, options.crf), 0);
    if (err >= 0) err = av_opt_set_int(c->priv_data, "delay", 0, 0);
    if (err < 0) return FfmpegError(err, "video: h264_nvenc options");
    c->bit_rate = 0;
  } else {
    err = av_opt_set(c->priv_data, "preset", options.preset.c_str(), 0);
    if (err >= 0) err = av_opt_set_double(c->priv_data, "crf", options.crf, 0);
    // Fragmented: as the direct x264 path (docs/design.md §10.4): no frame threads' delay, a
    // 4-frame lookahead with mb-tree.
    if (err >= 0 && fragmented_) err = av_opt_set(c->priv_data, "tune", "zerolatency", 0);
    if (err >= 0 && fragmented_) {
      err = av_opt_set(c->priv_data, "x264-params", "rc-lookahead=4:mbtree=1", 0);
    }
    if (err < 0)
      return FfmpegError(err, "video: libx264 options", absl::StatusCode::kInvalidArgument);
  }
  err = avcodec_open2(c, codec, nullptr);
  if (err < 0) return FfmpegError(err, absl::StrCat("video: opening ", codec_name_));

  stream_ = avformat_new_stream(muxer_.get(), nullptr);
  if (stream_ == nullptr) return absl::ResourceExhaustedError("video: out of memory for a stream");
  err = avcodec_parameters_from_context(stream_->codecpar, c);
  if (err < 0) return FfmpegError(err, "video: copying codec parameters");
  stream_->time_base = c->time_base;
  stream_->avg_frame_rate = AVRational{options.fps, 1};
  AVDictionary* raw_opts = nullptr;
  err = av_dict_set(
      &raw_opts, "movflags",
      fragmented_ ? "frag_custom+empty_moov+default_base_moof+skip_trailer" : "+faststart", 0);
  std::unique_ptr<AVDictionary, DictFree> opts(raw_opts);
  if (err < 0) return FfmpegError(err, "video: mp4 options");
  raw_opts = opts.release();
  err = avformat_write_header(muxer_.get(), &raw_opts);
  opts.reset(raw_opts);
  if (err < 0) return FfmpegError(err, "video: writing the mp4 header");
  TV_ASSIGN_OR_RETURN(frame_, internal::AllocFrame(AV_PIX_FMT_YUV420P, width, height));
  packet_.reset(av_packet_alloc());
  if (packet_ == nullptr) return absl::ResourceExhaustedError("video: out of memory for a packet");
  return absl::OkStatus();
}

absl::Status StreamWriter::SendAndDrain(const AVFrame* frame) {
  int err = avcodec_send_frame(encoder_.get(), frame);
  if (err < 0) return FfmpegError(err, absl::StrCat("video: ", codec_name_, " send_frame"));
  while (true) {
    err = avcodec_receive_packet(encoder_.get(), packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return absl::OkStatus();
    if (err < 0) return FfmpegError(err, absl::StrCat("video: ", codec_name_, " receive_packet"));
    av_packet_rescale_ts(packet_.get(), encoder_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    err = av_write_frame(muxer_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (err < 0) return FfmpegError(err, "video: muxing a packet");
    ++packets_;
  }
}

absl::Status StreamWriter::AddI420(const uint8_t* pictures, int64_t count) {
  if (finished_) return absl::FailedPreconditionError("Mp4Writer: adding frames after Finish");
  const int w = encoder_->width, h = encoder_->height;
  const int64_t luma = static_cast<int64_t>(w) * h;
  for (int64_t f = 0; f < count; ++f) {
    int err = av_frame_make_writable(frame_.get());
    if (err < 0) return FfmpegError(err, "video: av_frame_make_writable");
    const uint8_t* src = pictures + f * (luma * 3 / 2);
    const uint8_t* planes[3] = {src, src + luma, src + luma + luma / 4};
    for (int p = 0; p < 3; ++p) {
      const int pw = p == 0 ? w : w / 2, ph = p == 0 ? h : h / 2;
      for (int row = 0; row < ph; ++row) {
        std::memcpy(frame_->data[p] + static_cast<int64_t>(row) * frame_->linesize[p],
                    planes[p] + static_cast<int64_t>(row) * pw, static_cast<size_t>(pw));
      }
    }
    frame_->pts = next_pts_++;
    TV_RETURN_IF_ERROR(SendAndDrain(frame_.get()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StreamWriter::TakeFragment() {
  if (!fragmented_) {
    return absl::FailedPreconditionError("Mp4Writer: TakeFragment needs Mp4Options::fragmented");
  }
  if (!finished_ && packets_ > packets_in_fragments_) {
    const int err = av_write_frame(muxer_.get(), nullptr);  // frag_custom: close a fragment
    if (err < 0) return FfmpegError(err, "video: closing an mp4 fragment");
    avio_flush(io_.get());
    packets_in_fragments_ = packets_;
  }
  if (packets_in_fragments_ == 0) return std::string();  // nothing playable yet
  std::string out = appended_.substr(taken_);
  taken_ = appended_.size();
  return out;
}

absl::StatusOr<std::string> StreamWriter::Finish() {
  if (finished_) return absl::FailedPreconditionError("Mp4Writer: Finish called twice");
  if (next_pts_ == 0) return absl::FailedPreconditionError("frames: none were added");
  TV_RETURN_IF_ERROR(SendAndDrain(nullptr));
  finished_ = true;
  int err = av_write_trailer(muxer_.get());  // fragmented: the last fragment
  if (err < 0) return FfmpegError(err, "video: writing the mp4 trailer");
  avio_flush(io_.get());
  if (io_->error < 0) return FfmpegError(io_->error, "video: flushing the mp4 bytes");
  packets_in_fragments_ = packets_;
  if (fragmented_) return appended_;
  return std::move(file_.bytes);
}

}  // namespace

namespace internal {

absl::StatusOr<std::unique_ptr<FfmpegStream>> OpenFfmpegStream(Mp4Encoder encoder, int width,
                                                               int height,
                                                               const Mp4Options& options) {
  if (encoder != Mp4Encoder::kFfmpeg && encoder != Mp4Encoder::kNvenc) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoder: ", Mp4EncoderName(encoder), " is not an FFmpeg encoder"));
  }
  auto writer = std::make_unique<StreamWriter>();
  TV_RETURN_IF_ERROR(writer->Open(encoder, width, height, options));
  return std::unique_ptr<FfmpegStream>(std::move(writer));
}

}  // namespace internal

const NvencProbe& ProbeNvenc() {
  static const NvencProbe probe = [] {
    internal::SilenceFfmpegLogs();
    NvencProbe p;
    const AVCodec* codec = avcodec_find_encoder_by_name("h264_nvenc");
    if (codec == nullptr) {
      p.detail = "this FFmpeg has no h264_nvenc encoder";
      return p;
    }
    CodecContextPtr c(avcodec_alloc_context3(codec));
    if (c == nullptr) {
      p.detail = "out of memory for an encoder";
      return p;
    }
    c->width = 256;
    c->height = 144;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = AVRational{1, 16};
    c->framerate = AVRational{16, 1};
    const int err = avcodec_open2(c.get(), codec, nullptr);
    if (err < 0) {
      p.detail = std::string(FfmpegError(err, "h264_nvenc does not open").message());
      return p;
    }
    p.available = true;
    p.detail = "h264_nvenc opened";
    return p;
  }();
  return probe;
}

absl::StatusOr<std::string> EncodeMp4(const Tensor& frames, const Mp4Options& options) {
  TV_ASSIGN_OR_RETURN(const Mp4Encoder encoder,
                      internal::ResolveMp4Encoder(options, Mp4Encoder::kFfmpeg));
  if (encoder == Mp4Encoder::kX264) return EncodeMp4X264(frames, options);
  if (encoder == Mp4Encoder::kNvenc) {  // the streaming writer, fed the whole video
    TV_RETURN_IF_ERROR(internal::CheckRgbTensor(frames, 4, "frames", kMaxSide));
    Mp4Writer writer;
    Mp4Options nvenc = options;
    nvenc.encoder = Mp4Encoder::kNvenc;
    TV_RETURN_IF_ERROR(
        writer.Open(static_cast<int>(frames.dim(2)), static_cast<int>(frames.dim(1)), nvenc));
    TV_RETURN_IF_ERROR(writer.AddFrames(frames));
    return writer.Finish();
  }
  TV_RETURN_IF_ERROR(internal::CheckRgbTensor(frames, 4, "frames", kMaxSide));
  const int64_t height = frames.dim(1);
  const int64_t width = frames.dim(2);
  if (height % 2 != 0 || width % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames: ", frames.Describe(),
                     " has an odd height or width; yuv420p needs both "
                     "even"));
  }
  TV_RETURN_IF_ERROR(CheckOptions(options));
  FfmpegMp4Writer writer;
  TV_RETURN_IF_ERROR(writer.Open(static_cast<int>(width), static_cast<int>(height), options));
  const auto* rgb = frames.data<uint8_t>();
  const int64_t frame_bytes = height * width * 3;
  for (int64_t f = 0; f < frames.dim(0); ++f) {
    TV_RETURN_IF_ERROR(writer.AddFrame(rgb + f * frame_bytes, f));
  }
  return writer.Finish();
}

absl::Status WriteMp4(const Tensor& frames, const std::string& path, const Mp4Options& options) {
  TV_ASSIGN_OR_RETURN(std::string bytes, EncodeMp4(frames, options));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (out == nullptr) {
    const int e = errno;
    const std::string message = absl::StrCat(path, ": cannot open for writing: ", strerror(e));
    if (e == ENOENT || e == ENOTDIR) return absl::NotFoundError(message);
    if (e == EACCES || e == EPERM || e == EROFS) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  if (std::fwrite(bytes.data(), 1, bytes.size(), out.get()) != bytes.size()) {
    return absl::InternalError(absl::StrCat(path, ": short write: ", strerror(errno)));
  }
  if (std::fclose(out.release()) != 0) {
    return absl::InternalError(absl::StrCat(path, ": close failed: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace turbovid::engine::video
