// attention.cu: fused multi-head attention forward, FlashAttention-2 style (Dao, "FlashAttention-2:
// Faster Attention with Better Parallelism and Work Partitioning", arXiv 2307.08691, Algorithm 1).
//
// One thread block owns a tile of query rows of one (batch, head); K/V tiles stream through shared
// memory; every warp keeps its rows' running max `m`, running sum `l` and unnormalised output `O` in
// registers and rescales them per tile (online softmax); `O` is divided by `l` once at the end. The
// score matrix never reaches global memory.
//
// Layout: every operand has explicit batch, row (position) and head strides in elements, so the
// packed QKV output of one projection ([batch, seq, 3 * heads * head_dim]) is read in place and a
// head-major [batch, heads, seq, head_dim] layout (a KV cache) works as well. With kv_heads <
// heads, query head h reads key/value head h / (heads / kv_heads) (grouped-query attention). Query i of a call sits at absolute position i + (kv_len - q_len): with
// `causal`, it sees keys j <= i + kv_len - q_len (a decoder's new tokens after a KV cache).
// `key_mask` ([batch, kv_len], nonzero = keep) hides padding. A row that sees no key gives 0.
//
// Kernels:
//   attn_fwd_mma_{bf16,f16}_d{64,80,128}: tensor cores (mma.sync m16n8k16, f32 accumulators),
//       64 query rows per block (4 warps x 16), 64 keys per tile, K and V loaded with cp.async so
//       that the next K tile arrives during softmax and P.V, and the next V tile during Q.K^T.
//       Needs head offsets and row strides that are multiples of 8 elements (16-byte cp.async).
//   attn_fwd_simt_{f32,bf16,f16}: CUDA cores, any head_dim <= 128, any alignment (f32 parity
//       path and small test models): 16 query rows per block, 32 keys per tile.
#include "common.cuh"

struct AttnParams {
    const void* q;
    const void* k;
    const void* v;
    void* o;
    const int* key_mask;
    i64 q_batch_stride, q_row_stride, q_head_stride;
    i64 k_batch_stride, k_row_stride, k_head_stride;
    i64 v_batch_stride, v_row_stride, v_head_stride;
    i64 o_batch_stride, o_row_stride, o_head_stride;
    int q_len, kv_len, heads, kv_heads, head_dim, causal;
    float scale_log2;  // softmax scale * log2(e): scores are exponentiated with exp2
};

// ---------------------------------------------------------------------------------------------
// Tensor-core kernel.
// ---------------------------------------------------------------------------------------------

#define MMA_BR 64
#define MMA_BC 64
#define MMA_THREADS 128

// rows x D tile (16-byte chunks) from global into shared memory with row pitch SD; rows at or past
// `limit` are zero-filled.
template <typename T, int D, int SD>
__device__ __forceinline__ void load_tile(T* s, const T* g, i64 row_stride, int row0, int rows, int limit) {
    constexpr int CPR = D / 8;
    for (int i = threadIdx.x; i < rows * CPR; i += MMA_THREADS) {
        int r = i / CPR, c = i % CPR;
        bool valid = row0 + r < limit;
        const T* src = valid ? g + (i64)(row0 + r) * row_stride + c * 8 : g;
        cp_async16(s + r * SD + c * 8, src, valid);
    }
}

template <typename T, int D>
__device__ __forceinline__ void attn_fwd_mma(const AttnParams& p) {
    constexpr int SD = D + 8;  // row pitch: 16 bytes of padding keep ldmatrix free of bank conflicts
    constexpr int KD = D / 16; // k-steps over head_dim
    constexpr int ND = D / 8;  // n-tiles of the output
    constexpr int NC = MMA_BC / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sQ = reinterpret_cast<T*>(smem_raw);
    T* sK = sQ + MMA_BR * SD;
    T* sV = sK + MMA_BC * SD;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, tq = lane % 4;
    const int q0 = blockIdx.x * MMA_BR, h = blockIdx.y, b = blockIdx.z;
    const int kvh = h / (p.heads / p.kv_heads);
    const T* Q = static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride;
    const T* K = static_cast<const T*>(p.k) + b * p.k_batch_stride + kvh * p.k_head_stride;
    const T* V = static_cast<const T*>(p.v) + b * p.v_batch_stride + kvh * p.v_head_stride;
    T* O = static_cast<T*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride;
    const int* kmask = p.key_mask ? p.key_mask + (i64)b * p.kv_len : nullptr;
    const int offset = p.kv_len - p.q_len;  // absolute position of query 0

    int kv_end = p.kv_len;
    if (p.causal) kv_end = min(kv_end, q0 + MMA_BR + offset);
    const int n_tiles = kv_end > 0 ? (kv_end + MMA_BC - 1) / MMA_BC : 0;

    load_tile<T, D, SD>(sQ, Q, p.q_row_stride, q0, MMA_BR, p.q_len);
    if (n_tiles > 0) load_tile<T, D, SD>(sK, K, p.k_row_stride, 0, MMA_BC, p.kv_len);
    cp_async_commit();
    if (n_tiles > 0) load_tile<T, D, SD>(sV, V, p.v_row_stride, 0, MMA_BC, p.kv_len);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    u32 qf[KD][4];
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) ldmatrix_x4(qf[kk], sQ + (warp * 16 + (lane % 16)) * SD + kk * 16 + (lane / 16) * 8);

    float o[ND][4];
#pragma unroll
    for (int j = 0; j < ND; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float m[2] = {MVB_NEG_INF, MVB_NEG_INF}, l[2] = {0.f, 0.f};
    const int row_lo = q0 + warp * 16 + g;  // this thread's two query rows: row_lo and row_lo + 8

    for (int t = 0; t < n_tiles; ++t) {
        cp_async_wait<1>();  // K tile t has landed (V tile t may still be in flight)
        __syncthreads();
        float s[NC][4];
#pragma unroll
        for (int j = 0; j < NC; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
            for (int np = 0; np < NC / 2; ++np) {
                u32 kf[4];
                ldmatrix_x4(kf, sK + (np * 16 + (lane % 8) + (lane / 16) * 8) * SD + kk * 16 + ((lane / 8) % 2) * 8);
                mma16816<T>(s[2 * np], qf[kk], kf[0], kf[1]);
                mma16816<T>(s[2 * np + 1], qf[kk], kf[2], kf[3]);
            }
        }
        __syncthreads();  // every warp is done with sK: fetch the next K tile during softmax and P.V
        if (t + 1 < n_tiles) load_tile<T, D, SD>(sK, K, p.k_row_stride, (t + 1) * MMA_BC, MMA_BC, p.kv_len);
        cp_async_commit();

        const int key0 = t * MMA_BC;
        const bool need_mask =
            key0 + MMA_BC > p.kv_len || kmask != nullptr || (p.causal && key0 + MMA_BC - 1 > q0 + offset);
#pragma unroll
        for (int j = 0; j < NC; ++j) {
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                float v = s[j][c] * p.scale_log2;
                if (need_mask) {
                    int key = key0 + j * 8 + 2 * tq + (c & 1);
                    int qpos = row_lo + (c >= 2 ? 8 : 0) + offset;
                    bool hidden = key >= p.kv_len || (p.causal && key > qpos) || (kmask && kmask[key] == 0);
                    if (hidden) v = MVB_NEG_INF;
                }
                s[j][c] = v;
            }
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float mx = m[i];
#pragma unroll
            for (int j = 0; j < NC; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * i], s[j][2 * i + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float base = mx == MVB_NEG_INF ? 0.f : mx;  // a row that has seen no key yet
            const float corr = exp2f(m[i] - base);
            m[i] = mx;
            float rs = 0.f;
#pragma unroll
            for (int j = 0; j < NC; ++j) {
                s[j][2 * i] = exp2f(s[j][2 * i] - base);
                s[j][2 * i + 1] = exp2f(s[j][2 * i + 1] - base);
                rs += s[j][2 * i] + s[j][2 * i + 1];
            }
            l[i] = l[i] * corr + rs;
#pragma unroll
            for (int j = 0; j < ND; ++j) {
                o[j][2 * i] *= corr;
                o[j][2 * i + 1] *= corr;
            }
        }

        cp_async_wait<1>();  // V tile t has landed (K tile t+1 may still be in flight)
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MMA_BC / 16; ++kk) {
            u32 pa[4];
            pa[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
                u32 vf[4];
                ldmatrix_x4_trans(vf, sV + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * SD + dp * 16 + (lane / 16) * 8);
                mma16816<T>(o[2 * dp], pa, vf[0], vf[1]);
                mma16816<T>(o[2 * dp + 1], pa, vf[2], vf[3]);
            }
        }
        __syncthreads();  // every warp is done with sV: fetch the next V tile during the next Q.K^T
        if (t + 1 < n_tiles) load_tile<T, D, SD>(sV, V, p.v_row_stride, (t + 1) * MMA_BC, MMA_BC, p.kv_len);
        cp_async_commit();
    }
    cp_async_wait<0>();

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float sum = l[i];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float inv = sum > 0.f ? 1.f / sum : 0.f;
        const int row = row_lo + 8 * i;
        if (row < p.q_len) {
            T* dst = O + (i64)row * p.o_row_stride;
#pragma unroll
            for (int j = 0; j < ND; ++j) {
                *reinterpret_cast<u32*>(dst + j * 8 + 2 * tq) = pack2<T>(o[j][2 * i] * inv, o[j][2 * i + 1] * inv);
            }
        }
    }
}

#define MVB_ATTN_MMA(T, D)                                                                                  \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS) attn_fwd_mma_##T##_d##D(const AttnParams p) { \
        attn_fwd_mma<T, D>(p);                                                                              \
    }
MVB_ATTN_MMA(bf16, 64)
MVB_ATTN_MMA(bf16, 80)
MVB_ATTN_MMA(bf16, 128)
MVB_ATTN_MMA(f16, 64)
MVB_ATTN_MMA(f16, 80)
MVB_ATTN_MMA(f16, 128)

// ---------------------------------------------------------------------------------------------
// CUDA-core kernel: the same algorithm in f32 arithmetic for any head_dim <= 128.
// ---------------------------------------------------------------------------------------------

#define SIMT_BR 16    // query rows per block: 4 warps x 4 rows
#define SIMT_BC 32    // keys per tile: one per lane
#define SIMT_MAXD 128

template <typename T>
__device__ __forceinline__ void attn_fwd_simt(const AttnParams& p) {
    __shared__ float sQ[SIMT_BR][SIMT_MAXD];
    __shared__ float sK[SIMT_BC][SIMT_MAXD + 1];
    __shared__ float sV[SIMT_BC][SIMT_MAXD];
    const int D = p.head_dim;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int q0 = blockIdx.x * SIMT_BR, h = blockIdx.y, b = blockIdx.z;
    const int kvh = h / (p.heads / p.kv_heads);
    const T* Q = static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride;
    const T* K = static_cast<const T*>(p.k) + b * p.k_batch_stride + kvh * p.k_head_stride;
    const T* V = static_cast<const T*>(p.v) + b * p.v_batch_stride + kvh * p.v_head_stride;
    T* O = static_cast<T*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride;
    const int* kmask = p.key_mask ? p.key_mask + (i64)b * p.kv_len : nullptr;
    const int offset = p.kv_len - p.q_len;

    for (int i = threadIdx.x; i < SIMT_BR * D; i += blockDim.x) {
        int r = i / D, d = i % D;
        sQ[r][d] = q0 + r < p.q_len ? to_float(Q[(i64)(q0 + r) * p.q_row_stride + d]) : 0.f;
    }
    int kv_end = p.kv_len;
    if (p.causal) kv_end = min(kv_end, q0 + SIMT_BR + offset);

    float o[4][4], m[4], l[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        m[r] = MVB_NEG_INF;
        l[r] = 0.f;
#pragma unroll
        for (int c = 0; c < 4; ++c) o[r][c] = 0.f;
    }
    for (int key0 = 0; key0 < kv_end; key0 += SIMT_BC) {
        __syncthreads();
        for (int i = threadIdx.x; i < SIMT_BC * D; i += blockDim.x) {
            int r = i / D, d = i % D;
            bool valid = key0 + r < p.kv_len;
            sK[r][d] = valid ? to_float(K[(i64)(key0 + r) * p.k_row_stride + d]) : 0.f;
            sV[r][d] = valid ? to_float(V[(i64)(key0 + r) * p.v_row_stride + d]) : 0.f;
        }
        __syncthreads();
        const int key = key0 + lane;
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int row = warp * 4 + r;
            float s = 0.f;
            for (int d = 0; d < D; ++d) s = fmaf(sQ[row][d], sK[lane][d], s);
            s *= p.scale_log2;
            const int qpos = q0 + row + offset;
            if (key >= p.kv_len || (p.causal && key > qpos) || (kmask && kmask[key] == 0)) s = MVB_NEG_INF;
            const float mx = fmaxf(m[r], warp_max(s));
            const float base = mx == MVB_NEG_INF ? 0.f : mx;
            const float corr = exp2f(m[r] - base);
            m[r] = mx;
            const float pr = exp2f(s - base);
            l[r] = l[r] * corr + warp_sum(pr);
#pragma unroll
            for (int c = 0; c < 4; ++c) o[r][c] *= corr;
            for (int j = 0; j < SIMT_BC; ++j) {
                const float pj = __shfl_sync(0xffffffffu, pr, j);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const int d = lane + 32 * c;
                    if (d < D) o[r][c] = fmaf(pj, sV[j][d], o[r][c]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int row = q0 + warp * 4 + r;
        if (row >= p.q_len) continue;
        const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int d = lane + 32 * c;
            if (d < D) O[(i64)row * p.o_row_stride + d] = from_float<T>(o[r][c] * inv);
        }
    }
}

#define MVB_ATTN_SIMT(T) \
    extern "C" __global__ void __launch_bounds__(128) attn_fwd_simt_##T(const AttnParams p) { attn_fwd_simt<T>(p); }
MVB_ATTN_SIMT(float)
MVB_ATTN_SIMT(bf16)
MVB_ATTN_SIMT(f16)
