# Shared settings for Kiln's native libraries.

# Where a binding's native libraries go: JavaCPP's platform folder beside the binding class in
# the classes folder of the module that packages it, e.g.
# target/kiln-core/classes/ai/kiln/backend/cpu/linux-x86_64/, so Loader.load() finds them in the jar.
function(kiln_library_output target classes_dir java_package_dir)
  set(dir "${classes_dir}/${java_package_dir}/${KILN_PLATFORM}")
  set_target_properties(${target} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY "${dir}"
    # NOTE: dependencies are found beside the library, where JavaCPP extracts them together.
    BUILD_RPATH "$ORIGIN"
    INSTALL_RPATH "$ORIGIN")
endfunction()

# Looks for nvcc unless KILN_CUDA=OFF; KILN_CUDA=ON makes its absence an error. The caller
# enables the CUDA language at directory scope when it is found.
function(kiln_find_cuda out_var)
  set(${out_var} FALSE PARENT_SCOPE)
  if(KILN_CUDA STREQUAL "OFF")
    message(STATUS "Kiln: CUDA kernels disabled (KILN_CUDA=OFF)")
    return()
  endif()
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS "/usr/local/cuda/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc" CACHE FILEPATH "nvcc" FORCE)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    if(KILN_CUDA STREQUAL "ON")
      message(FATAL_ERROR "Kiln: KILN_CUDA=ON but no CUDA compiler (nvcc) was found")
    endif()
    message(STATUS "Kiln: no nvcc found, building the CPU backend only")
    return()
  endif()
  set(${out_var} TRUE PARENT_SCOPE)
endfunction()
