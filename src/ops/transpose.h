// transpose.h — batched 2-D transpose, the layout change between channel-major images
// [N, C, P] and token-major sequences [N, P, C] (spatial attention), and between
// [B, F·C, P] and [B, P, F·C] (temporal attention: tokens = frames at each pixel).
//
// out[b][c][r] = inp[b][r][c]. It is its own backward: the gradient of a transpose is the
// transpose of the gradient (call it with rows and cols swapped). Pure data movement: exact.
#ifndef MAV_OPS_TRANSPOSE_H
#define MAV_OPS_TRANSPOSE_H

// out [batch, cols, rows] = transpose of inp [batch, rows, cols] (out != inp).
void mav_transpose_forward(float *out, const float *inp, int batch, long rows, long cols);
// dinp [batch, rows, cols] = transpose of dout [batch, cols, rows] (written).
void mav_transpose_backward(float *dinp, const float *dout, int batch, long rows, long cols);

#endif
