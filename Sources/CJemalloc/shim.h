// jemalloc, as Debian's libjemalloc-dev installs it (unprefixed: linking it replaces malloc and
// free for the whole process). Only SteleServer's `Allocator` imports this module.
#ifndef STELE_CJEMALLOC_SHIM_H
#define STELE_CJEMALLOC_SHIM_H
#include <jemalloc/jemalloc.h>
#endif
