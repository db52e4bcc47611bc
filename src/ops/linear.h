// linear.h — fully connected layer y = x·Wᵀ + b over rows (PyTorch nn.Linear, weight [out, in]).
//
// Every row of the input is independent, so the row count R folds whatever leading dims the
// caller has (batch, tokens, pixels). Rows may be strided: ld_inp / ld_out are the distance in
// floats between consecutive rows, so a linear can read its input from, or write its output
// into, a column slice of a wider row-major buffer (e.g. one part of a concatenated feature
// vector). Only the C_in / C_out columns of each row are read or written; the rest are left
// alone. The plain functions are the contiguous case (ld_inp = C_in, ld_out = C_out).
//
// All GEMMs go through mav_sgemm (one call each, never split over K), so results are
// bit-identical run to run at a fixed thread count. No scratch is needed.
#ifndef MAV_OPS_LINEAR_H
#define MAV_OPS_LINEAR_H

// out = inp·weightᵀ + bias (bias NULL: none).
void mav_linear_forward(float *out,          // [R, C_out]
                        const float *inp,    // [R, C_in]
                        const float *weight, // [C_out, C_in]
                        const float *bias,   // [C_out] or NULL
                        int R, int C_in, int C_out);

// dinp = dout·weight (written); dweight += doutᵀ·inp; dbias += Σ_rows dout. NULL = skip.
void mav_linear_backward(float *dinp,        // [R, C_in] or NULL
                         float *dweight,     // [C_out, C_in] or NULL
                         float *dbias,       // [C_out] or NULL
                         const float *dout,  // [R, C_out]
                         const float *inp,   // [R, C_in] (needed only for dweight)
                         const float *weight,// [C_out, C_in] (needed only for dinp)
                         int R, int C_in, int C_out);

// As mav_linear_forward with row strides: row r of inp starts at inp + r·ld_inp, row r of out
// at out + r·ld_out (ld_inp >= C_in, ld_out >= C_out).
void mav_linear_forward_strided(float *out, int ld_out,       // [R, ld_out], first C_out columns written
                                const float *inp, int ld_inp, // [R, ld_inp], first C_in columns read
                                const float *weight,          // [C_out, C_in]
                                const float *bias,            // [C_out] or NULL
                                int R, int C_in, int C_out);

// As mav_linear_backward with row strides; dinp uses ld_inp (only its C_in columns are written)
// and dout uses ld_out.
void mav_linear_backward_strided(float *dinp, float *dweight, float *dbias,
                                 const float *dout, int ld_out, // [R, ld_out]
                                 const float *inp, int ld_inp,  // [R, ld_inp]; dinp has the same stride
                                 const float *weight, int R, int C_in, int C_out);

#endif
