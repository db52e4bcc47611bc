// threads.h — one thread setting for everything (mav's OpenMP kernels and OpenBLAS).
//
// OpenBLAS is the OpenMP build, so both share libgomp's pool and BLAS calls made inside a
// parallel region run single-threaded instead of oversubscribing. Results are bit-identical
// for a given thread count: every parallel loop uses a static schedule and each output
// element is owned by exactly one thread.
#ifndef MAV_THREADS_H
#define MAV_THREADS_H

void mav_threads_set(int n);   // n <= 0: all cores
int mav_threads_get(void);
int mav_threads_cores(void);   // cores available to this process

#endif
