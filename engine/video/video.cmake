# FFmpeg MP4 writer and image decoding. Owner: video work.
list(APPEND TV_ENGINE_SOURCES
  video/ffmpeg_util.cc
  video/image.cc
  video/mp4_encode.cc
  video/video.cc
)
list(APPEND TV_ENGINE_LIBS PkgConfig::FFMPEG)
list(APPEND TV_ENGINE_TEST_SOURCES
  video/video_test.cc
)
# VideoToFrames must round every step to fp32 exactly like upstream; never fuse a*b+c into an FMA.
set_source_files_properties(video/video.cc PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
