# Installs the library, its headers, and a relocatable CMake package so that consumers can write
# find_package(dagsched CONFIG REQUIRED) and link dagsched::dagsched.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS dagsched EXPORT dagschedTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/dagsched DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(_dagsched_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/dagsched)
install(EXPORT dagschedTargets NAMESPACE dagsched:: DESTINATION ${_dagsched_cmake_dir})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dagschedConfig.cmake.in
  ${PROJECT_BINARY_DIR}/dagschedConfig.cmake
  INSTALL_DESTINATION ${_dagsched_cmake_dir}
)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dagschedConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion
)
install(FILES ${PROJECT_BINARY_DIR}/dagschedConfig.cmake ${PROJECT_BINARY_DIR}/dagschedConfigVersion.cmake
  DESTINATION ${_dagsched_cmake_dir}
)
