#include "core/dtype.h"
#include "core/error.h"

#include <string.h>

static const char *const k_names[MAV_DTYPE_COUNT] = {
    "F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"};
static const size_t k_sizes[MAV_DTYPE_COUNT] = {4, 2, 2, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1};

const char *mav_dtype_name(mav_dtype t) { return (t >= 0 && t < MAV_DTYPE_COUNT) ? k_names[t] : "?"; }
size_t mav_dtype_size(mav_dtype t) { MAV_ASSERT(t >= 0 && t < MAV_DTYPE_COUNT); return k_sizes[t]; }
int mav_dtype_is_float(mav_dtype t) { return t == MAV_F32 || t == MAV_F16 || t == MAV_BF16 || t == MAV_F64; }

int mav_dtype_from_name(const char *name, mav_dtype *t) {
    for (int i = 0; i < MAV_DTYPE_COUNT; i++)
        if (strcmp(name, k_names[i]) == 0) { *t = (mav_dtype)i; return 0; }
    return -1;
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t mav_f32_to_f16(float f) {
    uint32_t x = f2u(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)                        // Inf or NaN (keep a quiet NaN payload bit)
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x0200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u)                        // rounds to >= 65520 -> overflow to Inf
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {                       // below 2^-14: f16 subnormal or zero
        // value = ax_float; subnormal unit is 2^-24. Use float arithmetic: adding 0.5 (2^-1)
        // aligns the unit 2^-24 to the float ulp at 0.5, so the FPU's RNE does the rounding.
        float r = u2f(ax) + 0.5f;
        return (uint16_t)(sign | (f2u(r) - 0x3f000000u));
    }
    // normal: rebias exponent (127 -> 15), round mantissa 23 -> 10 bits, ties to even
    uint32_t mant_odd = (ax >> 13) & 1u;
    ax += 0xc8000000u + 0xfffu + mant_odd;        // (15-127)<<23 rebias + rounding bias
    return (uint16_t)(sign | (ax >> 13));
}

float mav_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return u2f(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {                               // zero or subnormal: mant * 2^-24
        float v = (float)mant * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return u2f(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t mav_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); // quiet NaN
    x += 0x7fffu + ((x >> 16) & 1u);              // round to nearest, ties to even
    return (uint16_t)(x >> 16);
}

float mav_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

void mav_convert_to_f32(float *dst, const void *src, mav_dtype t, size_t n) {
    switch (t) {
    case MAV_F32: memcpy(dst, src, n * 4); break;
    case MAV_F16: for (size_t i = 0; i < n; i++) dst[i] = mav_f16_to_f32(((const uint16_t *)src)[i]); break;
    case MAV_BF16: for (size_t i = 0; i < n; i++) dst[i] = mav_bf16_to_f32(((const uint16_t *)src)[i]); break;
    case MAV_F64: for (size_t i = 0; i < n; i++) dst[i] = (float)((const double *)src)[i]; break;
    case MAV_I8: for (size_t i = 0; i < n; i++) dst[i] = (float)((const int8_t *)src)[i]; break;
    case MAV_I16: for (size_t i = 0; i < n; i++) dst[i] = (float)((const int16_t *)src)[i]; break;
    case MAV_I32: for (size_t i = 0; i < n; i++) dst[i] = (float)((const int32_t *)src)[i]; break;
    case MAV_I64: for (size_t i = 0; i < n; i++) dst[i] = (float)((const int64_t *)src)[i]; break;
    case MAV_U8: case MAV_BOOL: for (size_t i = 0; i < n; i++) dst[i] = (float)((const uint8_t *)src)[i]; break;
    case MAV_U16: for (size_t i = 0; i < n; i++) dst[i] = (float)((const uint16_t *)src)[i]; break;
    case MAV_U32: for (size_t i = 0; i < n; i++) dst[i] = (float)((const uint32_t *)src)[i]; break;
    case MAV_U64: for (size_t i = 0; i < n; i++) dst[i] = (float)((const uint64_t *)src)[i]; break;
    default: MAV_ASSERT(0);
    }
}

void mav_convert_from_f32(void *dst, mav_dtype t, const float *src, size_t n) {
    switch (t) {
    case MAV_F32: memcpy(dst, src, n * 4); break;
    case MAV_F16: for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = mav_f32_to_f16(src[i]); break;
    case MAV_BF16: for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = mav_f32_to_bf16(src[i]); break;
    case MAV_F64: for (size_t i = 0; i < n; i++) ((double *)dst)[i] = src[i]; break;
    default: MAV_ASSERT(0 && "mav_convert_from_f32: not a float storage type");
    }
}
