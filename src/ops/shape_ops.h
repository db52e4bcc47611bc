// shape_ops.h — data movement on frames-major images [N, C, P] (P = H·W; N = B·F, ENGINE.md):
// channel concatenation (the U-Net skip connection, SPEC §3 `cat([h, skips.pop()])`) and its
// inverse split, and nearest-neighbour 2× upsampling (SPEC §3 `upsample`: nearest 2×, then conv).
//
// These ops do no arithmetic except the upsample backward's 2×2 block sums, so forward results
// are exact copies; all are parallel over (image, channel) planes with a static schedule.
#ifndef MAV_OPS_SHAPE_OPS_H
#define MAV_OPS_SHAPE_OPS_H

// out[n] = [a[n]; b[n]] along channels (a's channels first, as torch.cat([a, b], dim=1)).
void mav_concat_forward(float *out,       // [N, Ca + Cb, P]
                        const float *a,   // [N, Ca, P]
                        const float *b,   // [N, Cb, P]
                        int N, int Ca, int Cb, long P);

// The split: da = dout[:, :Ca], db = dout[:, Ca:] (written; NULL = skip). Also the forward of
// a channel split (a tensor [N, Ca+Cb, P] into its two parts).
void mav_concat_backward(float *da,          // [N, Ca, P] or NULL
                         float *db,          // [N, Cb, P] or NULL
                         const float *dout,  // [N, Ca + Cb, P]
                         int N, int Ca, int Cb, long P);

// out[n, c, y, x] = inp[n, c, y/2, x/2] (torch.nn.functional.interpolate(scale_factor=2,
// mode="nearest")).
void mav_upsample2x_forward(float *out,        // [N, C, 2H, 2W]
                            const float *inp,  // [N, C, H, W]
                            int N, int C, int H, int W);

// dinp[n, c, y, x] = sum of the 2×2 block dout[n, c, 2y..2y+1, 2x..2x+1], summed as
// (top-left + top-right) + (bottom-left + bottom-right). Written, not accumulated.
void mav_upsample2x_backward(float *dinp,        // [N, C, H, W]
                             const float *dout,  // [N, C, 2H, 2W]
                             int N, int C, int H, int W);

#endif
