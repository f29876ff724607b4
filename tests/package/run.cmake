# The package test: cmake -DBUILD_DIR=<strata build> -DSOURCE_DIR=<strata source> -DWORK=<folder>
# -P run.cmake installs the build into WORK/prefix, then configures, builds and runs tests/package
# against it. Fails at the first step that fails, with its output.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "package test: ${what} failed (${status}):\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK}")
step("cmake --install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK}/prefix")
step("configuring the consumer" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package" -B "${WORK}/consumer" -G Ninja
     -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK}/prefix)
step("building the consumer" ${CMAKE_COMMAND} --build "${WORK}/consumer")
step("running the installed strata command" "${WORK}/prefix/bin/strata" --version)
step("running the consumer" "${WORK}/consumer/strata_consumer")
message("${step_output}")
# The installed tree holds no path into the source or build folders (a relocatable package).
file(GLOB_RECURSE config_files "${WORK}/prefix/lib/cmake/strata/*.cmake")
foreach(f ${config_files})
  file(READ "${f}" text)
  string(FIND "${text}" "${SOURCE_DIR}" in_source)
  string(FIND "${text}" "${BUILD_DIR}" in_build)
  if(NOT in_source EQUAL -1 OR NOT in_build EQUAL -1)
    message(FATAL_ERROR "package test: ${f} refers to the source or build folder")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
