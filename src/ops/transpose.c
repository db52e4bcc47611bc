#include "ops/transpose.h"

// 32×32 tiles: a tile of each side (4 KB) stays in L1 while it is turned around.
enum { TILE = 32 };

void mav_transpose_forward(float *out, const float *inp, int batch, long rows, long cols) {
    long tr = (rows + TILE - 1) / TILE, tc = (cols + TILE - 1) / TILE;
    #pragma omp parallel for schedule(static) collapse(2)
    for (int b = 0; b < batch; b++)
        for (long t = 0; t < tr * tc; t++) {
            const float *src = inp + (long)b * rows * cols;
            float *dst = out + (long)b * rows * cols;
            long r0 = (t / tc) * TILE, c0 = (t % tc) * TILE;
            long r1 = r0 + TILE < rows ? r0 + TILE : rows, c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (long c = c0; c < c1; c++)
                for (long r = r0; r < r1; r++) dst[c * rows + r] = src[r * cols + c];
        }
}

void mav_transpose_backward(float *dinp, const float *dout, int batch, long rows, long cols) {
    mav_transpose_forward(dinp, dout, batch, cols, rows);
}
