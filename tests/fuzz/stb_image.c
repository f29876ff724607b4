/* stb_image's decoders for the fuzz build, compiled from Debian's libstb-dev header (the same
   source as the libstb the product links) so that the fuzzer's coverage sees inside them
   (CMakeLists.txt says why with ASan but not UBSan). These definitions take the place of libstb's
   in the fuzz targets. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
