// dtype.h — element types of stored tensors (safetensors names) and the f16/bf16 codecs.
//
// mav computes in f32. f16 and bf16 are storage formats: conversion to them rounds to
// nearest, ties to even, exactly as IEEE 754 and the F16C instructions do (NaN stays NaN,
// overflow goes to ±Inf, f16 subnormals are produced and read exactly).
#ifndef MAV_DTYPE_H
#define MAV_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MAV_F32, MAV_F16, MAV_BF16, MAV_F64,
    MAV_I8, MAV_I16, MAV_I32, MAV_I64,
    MAV_U8, MAV_U16, MAV_U32, MAV_U64, MAV_BOOL,
    MAV_DTYPE_COUNT
} mav_dtype;

const char *mav_dtype_name(mav_dtype t);                 // "F32", "BF16", ... (safetensors spelling)
int mav_dtype_from_name(const char *name, mav_dtype *t); // 0 on success, -1 if unknown
size_t mav_dtype_size(mav_dtype t);                      // bytes per element
int mav_dtype_is_float(mav_dtype t);

uint16_t mav_f32_to_f16(float f);
float mav_f16_to_f32(uint16_t h);
uint16_t mav_f32_to_bf16(float f);
float mav_bf16_to_f32(uint16_t h);

// Convert n elements of any numeric dtype to f32 (ints and bools by value).
void mav_convert_to_f32(float *dst, const void *src, mav_dtype t, size_t n);
// Convert n f32 values to a float storage dtype (F32, F16, BF16, F64).
void mav_convert_from_f32(void *dst, mav_dtype t, const float *src, size_t n);

#endif
