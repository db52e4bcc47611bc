#include "core/threads.h"

#include <omp.h>

#include <cblas.h>

int mav_threads_cores(void) { return omp_get_num_procs(); }

void mav_threads_set(int n) {
    if (n <= 0) n = mav_threads_cores();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int mav_threads_get(void) { return omp_get_max_threads(); }
