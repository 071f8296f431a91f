# FFmpeg MP4 writer and image decoding. Owner: video work.
# Without FFmpeg (TV_WITH_FFMPEG=OFF, e.g. the bare-GPU-machine bundle) the same API answers
# Unimplemented (no_ffmpeg.cc); VideoToFrames needs no FFmpeg and is always built.
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
# VideoToFrames must round every step to fp32 exactly like upstream; never fuse a*b+c into an FMA.
set_source_files_properties(video/video.cc PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
