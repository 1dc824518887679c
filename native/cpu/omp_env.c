// Loaded before libgomp (the binding preloads it first): idle OpenMP threads spin briefly (an
// active policy bounded to GOMP_SPINCOUNT=1000, some microseconds) and then sleep, unless the user
// chose a wait policy or a spin count. libgomp reads these once, when it initialises, so they must
// be set before it loads.
//
// NOTE: the ops' threads share the cores with the JVM's (the engine loop, request delivery, the
// HTTP server). libgomp's default spin (300,000) starves those threads between steps, which cost
// 100x at batch 1 on a 2-core machine; never spinning (a passive policy) puts each op's workers to
// sleep and wakes them for the next one. Decode of the 154M shape on 2 cores, one run after the
// other: 87 tok/s passive, 98 with 1,000 spins and the policy undefined, 104 active with 1,000.
#define _GNU_SOURCE
#include <stdlib.h>

__attribute__((constructor)) static void kiln_bound_openmp_spinning(void) {
  if (getenv("OMP_WAIT_POLICY") == NULL && getenv("GOMP_SPINCOUNT") == NULL) {
    setenv("OMP_WAIT_POLICY", "ACTIVE", 0);
    setenv("GOMP_SPINCOUNT", "1000", 0);
  }
}
