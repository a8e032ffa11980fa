# dagsched_set_warnings(<target>): the project's warning set, applied per target (never globally), so
# projects that add_subdirectory() or FetchContent dagsched do not inherit it.
function(dagsched_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${DAGSCHED_WARNINGS_AS_ERRORS}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
                                             $<$<BOOL:${DAGSCHED_WARNINGS_AS_ERRORS}>:-Werror>)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
       AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      # GCC 12 at -O3 reports a bogus overlap inside std::string's operator+ ("x" + std::to_string(n)),
      # GCC bug 105329, fixed in 13. Only that warning is silenced, only for GCC 12.
      target_compile_options(${target} PRIVATE -Wno-restrict)
    endif()
    if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      # Checks the GUARDED_BY / REQUIRES annotations on mutex-protected state.
      target_compile_options(${target} PRIVATE -Wthread-safety)
    endif()
  endif()
endfunction()
