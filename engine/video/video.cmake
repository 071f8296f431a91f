# FFmpeg MP4 writer and image decoding; libx264-only MP4 writer. Owner: video work.
# Without FFmpeg (TV_WITH_FFMPEG=OFF, e.g. the bare-GPU-machine bundle) EncodeMp4/WriteMp4 go
# through libx264 directly when TV_WITH_X264 is on, and image decoding answers Unimplemented
# (no_ffmpeg.cc); VideoToFrames needs neither and is always built. Mp4Writer (streaming) is
# libx264 when built, else a frame buffer in front of EncodeMp4 (no_x264.cc).
list(APPEND TV_ENGINE_SOURCES video/video.cc)
if(TV_WITH_FFMPEG)
  list(APPEND TV_ENGINE_SOURCES
    video/ffmpeg_util.cc
    video/image.cc
    video/mp4_encode.cc
  )
  list(APPEND TV_ENGINE_LIBS PkgConfig::FFMPEG)
  list(APPEND TV_ENGINE_TEST_SOURCES
    video/video_test.cc
  )
else()
  list(APPEND TV_ENGINE_SOURCES video/no_ffmpeg.cc)
endif()
if(TV_WITH_X264)
  list(APPEND TV_ENGINE_SOURCES video/mp4_x264.cc)
  # The library alone: x264.pc's -DX264_API_IMPORTS (Windows dllimport) would otherwise reach every
  # tv_engine source and miss everyone's ccache for nothing.
  list(APPEND TV_ENGINE_LIBS ${X264_LINK_LIBRARIES})
  set_source_files_properties(video/mp4_x264.cc PROPERTIES INCLUDE_DIRECTORIES "${X264_INCLUDE_DIRS}")
  list(APPEND TV_ENGINE_TEST_SOURCES video/mp4_x264_test.cc)
else()
  list(APPEND TV_ENGINE_SOURCES video/no_x264.cc)
endif()
# VideoToFrames must round every step to fp32 exactly like upstream; never fuse a*b+c into an FMA.
set_source_files_properties(video/video.cc PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
