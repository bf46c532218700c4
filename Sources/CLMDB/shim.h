// The LMDB C API, as Debian's liblmdb-dev installs it. Only SteleLMDB imports this module.
#ifndef STELE_CLMDB_SHIM_H
#define STELE_CLMDB_SHIM_H
#include <lmdb.h>
#endif
