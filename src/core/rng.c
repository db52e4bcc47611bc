#include "core/rng.h"

#include <math.h>

void mav_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

mav_rng mav_rng_fork(uint64_t seed, uint64_t tag) {
    uint32_t o[4];
    mav_philox4x32(seed ^ 0x6d61765f726e67ull, tag, o);  // "mav_rng"
    mav_rng r = {((uint64_t)o[0] << 32 | o[1]) ^ seed, 0};
    return r;
}

static inline float u24(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

void mav_rng_uniform(mav_rng *r, float *out, size_t n) {
    uint64_t base = r->offset;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < (n + 3) / 4; b++) {
        uint32_t o[4];
        mav_philox4x32(r->seed, base + b, o);
        for (int l = 0; l < 4 && b * 4 + l < n; l++) out[b * 4 + l] = u24(o[l]);
    }
    r->offset += (n + 3) / 4;
}

static void box_muller(const uint32_t o[4], double z[4]) {
    for (int p = 0; p < 2; p++) {
        double u1 = ((double)(o[2 * p] >> 8) + 1.0) * (1.0 / 16777216.0);
        double u2 = (double)(o[2 * p + 1] >> 8) * (1.0 / 16777216.0);
        double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        z[2 * p] = rad * cos(th);
        z[2 * p + 1] = rad * sin(th);
    }
}

void mav_rng_normal(mav_rng *r, float *out, size_t n) {
    uint64_t base = r->offset;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < (n + 3) / 4; b++) {
        uint32_t o[4];
        double z[4];
        mav_philox4x32(r->seed, base + b, o);
        box_muller(o, z);
        for (int l = 0; l < 4 && b * 4 + l < n; l++) out[b * 4 + l] = (float)z[l];
    }
    r->offset += (n + 3) / 4;
}

void mav_rng_normal_d(mav_rng *r, double *out, size_t n) {
    for (size_t b = 0; b < (n + 3) / 4; b++) {
        uint32_t o[4];
        double z[4];
        mav_philox4x32(r->seed, r->offset + b, o);
        box_muller(o, z);
        for (int l = 0; l < 4 && b * 4 + l < n; l++) out[b * 4 + l] = z[l];
    }
    r->offset += (n + 3) / 4;
}

uint32_t mav_rng_u32(mav_rng *r) {
    uint32_t o[4];
    mav_philox4x32(r->seed, r->offset++, o);
    return o[0];
}

uint32_t mav_rng_below(mav_rng *r, uint32_t n) {
    uint32_t o[4];
    mav_philox4x32(r->seed, r->offset++, o);
    uint64_t x = ((uint64_t)o[0] << 32) | o[1];
    return (uint32_t)(((unsigned __int128)x * n) >> 64);
}
