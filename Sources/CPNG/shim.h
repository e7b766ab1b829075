#ifndef DISTRI_CPNG_SHIM_H
#define DISTRI_CPNG_SHIM_H
#include <png.h>
#include <zlib.h>
#endif
