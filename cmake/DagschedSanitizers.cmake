# DAGSCHED_SANITIZER selects one sanitizer build for everything in this project (library, tests, examples,
# benchmarks). "address" also enables UndefinedBehaviorSanitizer, the usual pairing. GCC's "undefined" leaves
# out float-cast-overflow, which the engine needs: it turns doubles (retry backoff, cost-weighted ranks) into
# integers.
if(DAGSCHED_SANITIZER STREQUAL "")
  return()
endif()

if(DAGSCHED_SANITIZER STREQUAL "address")
  set(_dagsched_san_flags -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow
      -fno-omit-frame-pointer)
elseif(DAGSCHED_SANITIZER STREQUAL "thread")
  set(_dagsched_san_flags -fsanitize=thread -fno-omit-frame-pointer)
elseif(DAGSCHED_SANITIZER STREQUAL "undefined")
  set(_dagsched_san_flags -fsanitize=undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow
      -fno-omit-frame-pointer)
else()
  message(FATAL_ERROR "DAGSCHED_SANITIZER must be address, thread, undefined or empty, not '${DAGSCHED_SANITIZER}'")
endif()

add_compile_options(${_dagsched_san_flags})
add_link_options(${_dagsched_san_flags})
