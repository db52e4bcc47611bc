#include "ops/embedding.h"

#include <math.h>
#include <string.h>

#include <omp.h>

void mav_embedding_forward(float *out, const int32_t *ids, const float *table, int R, int V, int D) {
    MAV_ASSERT(R >= 0 && V >= 0 && D >= 0);
    #pragma omp parallel for schedule(static) if ((long)R * D > 32768)
    for (int r = 0; r < R; r++) {
        int32_t id = ids[r];
        MAV_ASSERT(id >= 0 && id < V);
        memcpy(out + (long)r * D, table + (long)id * D, (size_t)D * sizeof(float));
    }
}

void mav_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int R, int V, int D) {
    MAV_ASSERT(R >= 0 && V >= 0 && D >= 0);
    for (int r = 0; r < R; r++) MAV_ASSERT(ids[r] >= 0 && ids[r] < V);
    // Split the columns, not the rows: two rows with the same id then never race, and each
    // dtable element receives its additions in increasing r whatever the thread count.
    // Slices are multiples of 16 floats (one 64-byte line) so threads never share a line.
    #pragma omp parallel if ((long)R * D > 32768)
    {
        int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        int lines = (D + 15) / 16;
        int c0 = (int)((long)lines * tid / nt) * 16, c1 = (int)((long)lines * (tid + 1) / nt) * 16;
        if (c1 > D) c1 = D;
        if (c0 < c1) {
            for (int r = 0; r < R; r++) {
                float *dst = dtable + (long)ids[r] * D;
                const float *src = dout + (long)r * D;
                for (int c = c0; c < c1; c++) dst[c] += src[c];
            }
        }
    }
}

mav_status mav_embedding_check_ids(const int32_t *ids, long n, int V) {
    for (long i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return mav_fail(MAV_ERR_ARG, "token id %d at position %ld is outside the vocabulary [0, %d)", (int)ids[i],
                            i, V);
    return MAV_OK;
}

void mav_timestep_embedding(float *out, const float *t, int n, int d) {
    MAV_ASSERT(n >= 0 && d >= 0 && d % 2 == 0);
    int half = d / 2;
    // freq_i does not depend on b; computing it per element keeps the loop free of scratch
    // and costs nothing next to cos/sin.
    #pragma omp parallel for schedule(static) if ((long)n * d > 16384)
    for (int b = 0; b < n; b++) {
        double tb = t[b];
        for (int i = 0; i < half; i++) {
            double arg = tb * exp(-log(10000.0) * (double)i / (double)half);
            out[(long)b * d + i] = (float)cos(arg);
            out[(long)b * d + half + i] = (float)sin(arg);
        }
    }
}
