// lora.cu: LoRA matmuls without a merged weight, for a batch whose rows share one adapter or use
// different adapters: the segmented gather matmul (SGMV) of Punica (Chen et al., "Punica:
// Multi-Tenant LoRA Serving", arXiv 2310.18547, section 4).
//
// y = x W^T + (alpha/r) (x A^T) B^T is computed as
//   1. y = x W^T                     (cuBLAS, the dense base GEMM)
//   2. t = (alpha/r) x A_s^T         sgmv "shrink": n = r,   k = d_in,  t is [tokens, r]
//   3. y += t B_s^T                  sgmv "expand": n = d_out, k = r, accumulated into y in place
// where s is the adapter of each token's segment. Both steps are one kernel launch for the whole
// batch, whatever the number of adapters: rows are grouped in contiguous segments
// (`seg_start[s] .. seg_start[s+1]`) and segment s uses adapter `seg_adapter[s]` (< 0: none, the
// rows are left untouched). Weights of all adapters are stacked: A is [adapters, r, d_in] and
// B is [adapters, d_out, r] (PEFT's lora_A.weight and lora_B.weight layouts).
//
// Both steps are the same "NT" product C[m, n] (+)= alpha * sum_k X[m, k] * W_s[n, k]:
//   sgmv_mma_{bf16,f16}: tensor cores, 64x64 output tile per block of 4 warps (2x2, 32x32 each),
//       k in steps of 32 through a two-stage cp.async pipeline; needs k, the row strides and the
//       adapter stride to be multiples of 8 elements.
//   sgmv_simt_{float,bf16,f16}: CUDA cores, 16x16 tiles, any shape (the f32 parity path).
// Grid: x = n tiles, y = segments, z = m tiles of the longest segment (blocks past their
// segment's end return at once).
#include "common.cuh"

struct SgmvParams {
    const void* x;            // [m, k] rows with stride x_row_stride
    const void* w;            // [adapters, n, k]
    void* c;                  // [m, n] rows with stride c_row_stride
    const int* seg_start;     // [segments + 1]
    const int* seg_adapter;   // [segments]
    i64 x_row_stride, w_adapter_stride, w_row_stride, c_row_stride;
    int n, k, accumulate;
    float alpha;
};

#define SG_BM 64
#define SG_BN 64
#define SG_BK 32
#define SG_SK (SG_BK + 8)  // row pitch in elements: 80 bytes, conflict-free for ldmatrix

template <typename T>
__device__ __forceinline__ void sgmv_load_stage(T* sX, T* sW, const T* X, const T* W, const SgmvParams& p, int m0,
                                                int m_end, int n0, int k0) {
    // 64 rows x 32 columns = 4 chunks of 8 elements per row; 256 chunks per operand, 2 per thread.
    for (int i = threadIdx.x; i < SG_BM * (SG_BK / 8); i += 128) {
        int r = i / (SG_BK / 8), c = (i % (SG_BK / 8)) * 8;
        bool vx = m0 + r < m_end && k0 + c < p.k;
        cp_async16(sX + r * SG_SK + c, vx ? X + (i64)(m0 + r) * p.x_row_stride + k0 + c : X, vx);
        bool vw = n0 + r < p.n && k0 + c < p.k;
        cp_async16(sW + r * SG_SK + c, vw ? W + (i64)(n0 + r) * p.w_row_stride + k0 + c : W, vw);
    }
}

template <typename T>
__device__ __forceinline__ void sgmv_mma(const SgmvParams& p) {
    __shared__ __align__(16) T sX[2][SG_BM * SG_SK];
    __shared__ __align__(16) T sW[2][SG_BN * SG_SK];
    const int seg = blockIdx.y;
    const int adapter = p.seg_adapter[seg];
    const int m_end = p.seg_start[seg + 1];
    const int m0 = p.seg_start[seg] + blockIdx.z * SG_BM;
    const int n0 = blockIdx.x * SG_BN;
    if (adapter < 0 || m0 >= m_end) return;
    const T* X = static_cast<const T*>(p.x);
    const T* W = static_cast<const T*>(p.w) + (i64)adapter * p.w_adapter_stride;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;  // this warp's 32x32 sub-tile
    const int g = lane / 4, tq = lane % 4;

    float acc[2][4][4];
#pragma unroll
    for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) acc[a][b][0] = acc[a][b][1] = acc[a][b][2] = acc[a][b][3] = 0.f;

    const int steps = (p.k + SG_BK - 1) / SG_BK;
    sgmv_load_stage<T>(sX[0], sW[0], X, W, p, m0, m_end, n0, 0);
    cp_async_commit();
    for (int s = 0; s < steps; ++s) {
        const int cur = s & 1;
        if (s + 1 < steps) sgmv_load_stage<T>(sX[cur ^ 1], sW[cur ^ 1], X, W, p, m0, m_end, n0, (s + 1) * SG_BK);
        cp_async_commit();
        cp_async_wait<1>();  // stage s has landed
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < SG_BK / 16; ++kk) {
            u32 af[2][4];
#pragma unroll
            for (int a = 0; a < 2; ++a)
                ldmatrix_x4(af[a], sX[cur] + (wm + a * 16 + (lane % 16)) * SG_SK + kk * 16 + (lane / 16) * 8);
#pragma unroll
            for (int bp = 0; bp < 2; ++bp) {
                u32 bf[4];
                ldmatrix_x4(bf, sW[cur] + (wn + bp * 16 + (lane % 8) + (lane / 16) * 8) * SG_SK + kk * 16 +
                                    ((lane / 8) % 2) * 8);
#pragma unroll
                for (int a = 0; a < 2; ++a) {
                    mma16816<T>(acc[a][2 * bp], af[a], bf[0], bf[1]);
                    mma16816<T>(acc[a][2 * bp + 1], af[a], bf[2], bf[3]);
                }
            }
        }
        __syncthreads();  // stage `cur` is free for step s + 2
    }
    cp_async_wait<0>();

    T* C = static_cast<T*>(p.c);
#pragma unroll
    for (int a = 0; a < 2; ++a) {
#pragma unroll
        for (int b = 0; b < 4; ++b) {
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int row = m0 + wm + a * 16 + g + (c >= 2 ? 8 : 0);
                const int col = n0 + wn + b * 8 + 2 * tq + (c & 1);
                if (row < m_end && col < p.n) {
                    T* dst = C + (i64)row * p.c_row_stride + col;
                    float v = p.alpha * acc[a][b][c];
                    if (p.accumulate) v += to_float(*dst);
                    *dst = from_float<T>(v);
                }
            }
        }
    }
}

#define MVB_SGMV_MMA(T) \
    extern "C" __global__ void __launch_bounds__(128) sgmv_mma_##T(const SgmvParams p) { sgmv_mma<T>(p); }
MVB_SGMV_MMA(bf16)
MVB_SGMV_MMA(f16)

#define ST 16
template <typename T>
__device__ __forceinline__ void sgmv_simt(const SgmvParams& p) {
    __shared__ float sX[ST][ST + 1];
    __shared__ float sW[ST][ST + 1];
    const int seg = blockIdx.y;
    const int adapter = p.seg_adapter[seg];
    const int m_end = p.seg_start[seg + 1];
    const int m0 = p.seg_start[seg] + blockIdx.z * ST;
    const int n0 = blockIdx.x * ST;
    if (adapter < 0 || m0 >= m_end) return;
    const T* X = static_cast<const T*>(p.x);
    const T* W = static_cast<const T*>(p.w) + (i64)adapter * p.w_adapter_stride;
    const int tx = threadIdx.x % ST, ty = threadIdx.x / ST;
    float acc = 0.f;
    for (int k0 = 0; k0 < p.k; k0 += ST) {
        const int kx = k0 + tx;
        sX[ty][tx] = m0 + ty < m_end && kx < p.k ? to_float(X[(i64)(m0 + ty) * p.x_row_stride + kx]) : 0.f;
        sW[ty][tx] = n0 + ty < p.n && kx < p.k ? to_float(W[(i64)(n0 + ty) * p.w_row_stride + kx]) : 0.f;
        __syncthreads();
#pragma unroll
        for (int i = 0; i < ST; ++i) acc = fmaf(sX[ty][i], sW[tx][i], acc);
        __syncthreads();
    }
    const int row = m0 + ty, col = n0 + tx;
    if (row < m_end && col < p.n) {
        T* dst = static_cast<T*>(p.c) + (i64)row * p.c_row_stride + col;
        float v = p.alpha * acc;
        if (p.accumulate) v += to_float(*dst);
        *dst = from_float<T>(v);
    }
}

#define MVB_SGMV_SIMT(T) \
    extern "C" __global__ void __launch_bounds__(256) sgmv_simt_##T(const SgmvParams p) { sgmv_simt<T>(p); }
MVB_SGMV_SIMT(float)
MVB_SGMV_SIMT(bf16)
MVB_SGMV_SIMT(f16)
