# Writes build_info_values.h (cmake -P, run on every build): the version, build type and CUDA
# switch passed in, and the source tree's short git commit ("unknown" outside a checkout). The file
# is rewritten only when a value changed, so an unchanged tree recompiles nothing.
execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE failed ERROR_QUIET)
if(failed OR commit STREQUAL "")
  set(commit unknown)
endif()
if(CUDA)
  set(cuda_on 1)
else()
  set(cuda_on 0)
endif()
set(text "// Written by common/build_info.cmake at build time.
#pragma once
#define TV_BUILD_VERSION \"${VERSION}\"
#define TV_BUILD_GIT_COMMIT \"${commit}\"
#define TV_BUILD_TYPE \"${BUILD_TYPE}\"
#define TV_BUILD_CUDA_ON ${cuda_on}
")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
