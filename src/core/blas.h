// blas.h — the one GEMM entry point (row-major), backed by OpenBLAS (docs/BLAS.md says why).
//
// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, op = transpose when trans_* is set.
// lda/ldb/ldc are row strides of the matrices as stored.
#ifndef MAV_BLAS_H
#define MAV_BLAS_H

void mav_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

#endif
