// Image bytes → RGB with FFmpeg: any still-image demuxer + decoder libavformat/libavcodec have,
// reading from memory.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/video/ffmpeg_util.h"
#include "engine/video/video.h"

extern "C" {
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
}

namespace turbovid::engine::video {
namespace {

using internal::CodecContextPtr;
using internal::FramePtr;
using internal::InputFormatPtr;
using internal::IoContextPtr;
using internal::PacketPtr;
using internal::SwsPtr;

constexpr size_t kMaxImageBytes = size_t{64} << 20;  // 64 MiB of encoded input
constexpr int64_t kMaxPixels = int64_t{64} << 20;    // 64 Mpixel decoded (192 MiB as RGB)
// Still-image demuxers only: a probe that finds a playlist or container format (which could
// open further URLs or carry hours of video) is refused before its header is read.
constexpr char kImageDemuxers[] =
    "png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,tiff_pipe,gif,gif_pipe,ppm_pipe,pgm_pipe,pbm_pipe,"
    "pam_pipe,qoi_pipe,jpegls_pipe,j2k_pipe,jpegxl_pipe,sgi_pipe,pcx_pipe,sunrast_pipe,"
    "xwd_pipe,dpx_pipe,psd_pipe,xbm_pipe,xpm_pipe,dds_pipe,pictor_pipe,gem_pipe,photocd_pipe";

// Any failure to parse caller bytes is the caller's bad input, except running out of memory.
absl::Status InputError(int err, const std::string& field, std::string_view what) {
  absl::Status status = internal::FfmpegError(err, absl::StrCat(field, ": ", std::string(what)),
                                              absl::StatusCode::kInvalidArgument);
  if (status.code() == absl::StatusCode::kInternal) {
    return absl::InvalidArgumentError(status.message());
  }
  return status;
}

absl::StatusOr<InputFormatPtr> OpenImageDemuxer(AVIOContext* io, const std::string& field) {
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return absl::ResourceExhaustedError("video: out of memory for a demuxer");
  raw->pb = io;
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  raw->format_whitelist = av_strdup(kImageDemuxers);
  if (raw->format_whitelist == nullptr) {
    avformat_free_context(raw);
    return absl::ResourceExhaustedError("video: out of memory for a demuxer");
  }
  // On failure avformat_open_input frees `raw` itself.
  const int err = avformat_open_input(&raw, "", nullptr, nullptr);
  if (err < 0) return InputError(err, field, "not a readable image");
  return InputFormatPtr(raw);
}

// Reads packets of the best video stream until the decoder yields one picture.
absl::StatusOr<FramePtr> DecodeFirstFrame(AVFormatContext* demuxer, const std::string& field) {
  const AVCodec* codec = nullptr;
  const int index = av_find_best_stream(demuxer, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (index < 0 || codec == nullptr) return InputError(index, field, "no decodable image");
  CodecContextPtr decoder(avcodec_alloc_context3(codec));
  if (decoder == nullptr) return absl::ResourceExhaustedError("video: out of memory for a decoder");
  int err = avcodec_parameters_to_context(decoder.get(), demuxer->streams[index]->codecpar);
  if (err < 0) return InputError(err, field, "codec parameters");
  decoder->thread_count = 1;
  decoder->max_pixels = kMaxPixels;  // decoders refuse larger pictures before allocating
  err = avcodec_open2(decoder.get(), codec, nullptr);
  if (err < 0) return InputError(err, field, "opening the decoder");
  PacketPtr packet(av_packet_alloc());
  FramePtr frame(av_frame_alloc());
  if (packet == nullptr || frame == nullptr) {
    return absl::ResourceExhaustedError("video: out of memory for decoding");
  }
  bool flushed = false;
  while (true) {
    err = avcodec_receive_frame(decoder.get(), frame.get());
    if (err == 0) return frame;
    if (err == AVERROR_EOF) return absl::InvalidArgumentError(absl::StrCat(field, ": no picture"));
    if (err != AVERROR(EAGAIN)) return InputError(err, field, "decoding");
    if (flushed) return absl::InvalidArgumentError(absl::StrCat(field, ": no picture"));
    err = av_read_frame(demuxer, packet.get());
    if (err == AVERROR_EOF) {
      flushed = true;
      err = avcodec_send_packet(decoder.get(), nullptr);
    } else if (err < 0) {
      return InputError(err, field, "reading");
    } else if (packet->stream_index != index) {
      av_packet_unref(packet.get());
      continue;
    } else {
      err = avcodec_send_packet(decoder.get(), packet.get());
      av_packet_unref(packet.get());
    }
    if (err < 0 && err != AVERROR_EOF) return InputError(err, field, "decoding");
  }
}

// 16-bit packed RGB(A) → RGB bytes, each sample v as min(255, (v + 128) >> 8): what swscale does
// for 16-bit grey, and what our own PNG decoder does (png_decode.h), so that a PNG gives the same
// RGB in builds with and without FFmpeg. swscale takes 16-bit RGB through its YUV path instead,
// which is off by one from that rounding in about 3% of the samples. False for other formats.
bool Rgb16ToRgb(const AVFrame& frame, uint8_t* out) {
  const auto format = static_cast<AVPixelFormat>(frame.format);
  const bool big = format == AV_PIX_FMT_RGB48BE || format == AV_PIX_FMT_RGBA64BE;
  const int channels = format == AV_PIX_FMT_RGB48BE || format == AV_PIX_FMT_RGB48LE     ? 3
                       : format == AV_PIX_FMT_RGBA64BE || format == AV_PIX_FMT_RGBA64LE ? 4
                                                                                        : 0;
  if (channels == 0) return false;
  for (int64_t y = 0; y < frame.height; ++y) {
    const uint8_t* row = frame.data[0] + y * frame.linesize[0];
    for (int64_t x = 0; x < frame.width; ++x) {
      for (int c = 0; c < 3; ++c) {
        const uint8_t* s = row + (x * channels + c) * 2;
        const int v = big ? s[0] << 8 | s[1] : s[1] << 8 | s[0];
        out[(y * frame.width + x) * 3 + c] = static_cast<uint8_t>(std::min(255, (v + 128) >> 8));
      }
    }
  }
  return true;
}

// Decoded picture (any pixel format) → [H, W, 3] U8 RGB.
absl::StatusOr<Tensor> FrameToRgb(const AVFrame& frame, const std::string& field) {
  const int64_t width = frame.width;
  const int64_t height = frame.height;
  if (width < 1 || height < 1 || width * height > kMaxPixels) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", width, "x", height, " is empty or over ", kMaxPixels, " pixels"));
  }
  Tensor rgb = Tensor::Zeros(DType::kU8, {height, width, 3});
  auto* out = rgb.data<uint8_t>();
  const auto format = static_cast<AVPixelFormat>(frame.format);
  if (format == AV_PIX_FMT_RGB24) {
    for (int64_t y = 0; y < height; ++y) {
      std::memcpy(out + y * width * 3, frame.data[0] + y * frame.linesize[0], width * 3);
    }
    return rgb;
  }
  if (Rgb16ToRgb(frame, out)) return rgb;
  SwsPtr sws(sws_getContext(frame.width, frame.height, format, frame.width, frame.height,
                            AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                            nullptr, nullptr, nullptr));
  if (sws == nullptr) {
    const char* name = av_get_pix_fmt_name(format);
    return absl::InvalidArgumentError(absl::StrCat(field, ": cannot convert pixel format ",
                                                   name != nullptr ? name : "unknown", " to RGB"));
  }
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
  if (desc != nullptr && (desc->flags & AV_PIX_FMT_FLAG_RGB) == 0 && desc->nb_components >= 3) {
    // Honour the decoder's YUV matrix and range (JPEG is full range, video-style is limited).
    int* inv_table = nullptr;
    int* table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    if (sws_getColorspaceDetails(sws.get(), &inv_table, &src_range, &table, &dst_range, &brightness,
                                 &contrast, &saturation) >= 0) {
      if (frame.color_range == AVCOL_RANGE_JPEG) src_range = 1;
      sws_setColorspaceDetails(sws.get(), sws_getCoefficients(frame.colorspace), src_range, table,
                               dst_range, brightness, contrast, saturation);
    }
  }
  uint8_t* const dst[1] = {out};
  const int dst_stride[1] = {static_cast<int>(width * 3)};
  if (sws_scale(sws.get(), frame.data, frame.linesize, 0, frame.height, dst, dst_stride) !=
      frame.height) {
    return absl::InternalError(absl::StrCat(field, ": sws_scale to RGB failed"));
  }
  return rgb;
}

}  // namespace

absl::StatusOr<Tensor> DecodeImage(const std::string& bytes, const std::string& field) {
  internal::SilenceFfmpegLogs();
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": no image bytes"));
  if (bytes.size() > kMaxImageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", bytes.size(), " bytes is over the limit of ", kMaxImageBytes));
  }
  internal::MemoryView view;
  view.data = reinterpret_cast<const uint8_t*>(bytes.data());
  view.size = static_cast<int64_t>(bytes.size());
  TV_ASSIGN_OR_RETURN(IoContextPtr io, internal::OpenMemoryReader(&view));
  TV_ASSIGN_OR_RETURN(InputFormatPtr demuxer, OpenImageDemuxer(io.get(), field));
  TV_ASSIGN_OR_RETURN(FramePtr frame, DecodeFirstFrame(demuxer.get(), field));
  return FrameToRgb(*frame, field);
}

}  // namespace turbovid::engine::video
