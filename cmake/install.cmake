# Installation and the CMake package (included by the top-level CMakeLists.txt).
#
#   cmake --install build --prefix PREFIX
#   PREFIX/lib/libstrata_*.a              the layers' static libraries
#   PREFIX/include/strata/<layer>/*.h     their headers, included as "engine/tensor.h"
#   PREFIX/bin/strata                     the command
#   PREFIX/lib/cmake/strata/              strataConfig.cmake, its version file and the exported targets
#
# A consumer writes find_package(strata 0.1 REQUIRED) and links strata::engine, strata::data,
# strata::models or strata::incremental; each carries its include directory, the layers below it and
# their dependencies (OpenMP, OpenBLAS, stb, threads; cuBLAS and cuDNN for a build with the real CUDA
# backend), and STRATA_HAVE_CUDA when the installed build has a CUDA backend. An emulated-CUDA
# build (tests' STRATA_CUDA_EMULATION) installs the emulator as strata::cudaemu and its headers
# under include/strata/cudaemu: it is what that build's backend runs on.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(strata_layers strata_kernels strata_engine strata_data strata_models strata_incremental)
if(TARGET strata_kernels_cuda)
  list(APPEND strata_layers strata_kernels_cuda)
endif()
foreach(target ${strata_layers})
  string(REPLACE "strata_" "" name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
endforeach()
set(strata_exported ${strata_layers})
if(STRATA_CUDA_BACKEND STREQUAL "emulated")
  list(APPEND strata_exported cudaemu)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/tests/cudaemu/include/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/strata/cudaemu)
endif()

install(TARGETS ${strata_exported} EXPORT strataTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET strata)
  # The installed command keeps the RUNPATH to OpenBLAS's OpenMP build (the top-level CMakeLists.txt
  # says why) instead of loading whichever libopenblas the system's alternatives point at.
  set_target_properties(strata PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
  install(TARGETS strata RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
foreach(layer kernels engine data models incremental)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/strata/${layer}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.cuh")
endforeach()

set(strata_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/strata)
install(EXPORT strataTargets NAMESPACE strata:: DESTINATION ${strata_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/strataConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/strataConfig.cmake INSTALL_DESTINATION ${strata_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/strataConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/strataConfig.cmake ${PROJECT_BINARY_DIR}/strataConfigVersion.cmake
        DESTINATION ${strata_cmake_dir})
