#ifndef MINGUS_CLIBPQ_SHIM_H
#define MINGUS_CLIBPQ_SHIM_H

#include <libpq-fe.h>
#include <sys/prctl.h>

/* Names the calling thread for `top -H`, `perf` and debuggers (at most 15 bytes are kept);
   prctl is variadic, which Swift cannot call. */
static inline void mingus_pq_name_thread(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

#endif
