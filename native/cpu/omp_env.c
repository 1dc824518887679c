// Loaded before libgomp (the binding preloads it first): makes idle OpenMP threads sleep rather
// than spin, unless the user chose a policy. NOTE: the ops' threads share the cores with the JVM's
// (the engine loop, request delivery, the HTTP server); spinning workers starve those threads
// between steps, which cost 100x at batch 1 on a 2-core machine. libgomp reads the policy once,
// when it initialises, so it must be set before it loads.
#define _GNU_SOURCE
#include <stdlib.h>

__attribute__((constructor)) static void kiln_prefer_passive_openmp(void) {
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
}
