#ifndef MINGUS_CLIBPQ_SHIM_H
#define MINGUS_CLIBPQ_SHIM_H

#include <libpq-fe.h>

#endif
