// cudaemu: `device_launch_parameters.h` declares the built-in variables; here they live in the
// kernel-language header.
#pragma once

#include "cudaemu/kernel_lang.h"
