// rope.cu: rotary position embedding in transformers' `rotate_half` form (LlamaRotaryEmbedding,
// apply_rotary_pos_emb), as the CPU reference does (kernel/src/backend/cpu/elementwise.rs, `rope`).
//
//   rope_T   in place over rows of `cols` = heads * 2 * half: for each head, pairs (i, i + half)
//            rotated by positions[row] * inv_freq[i]; angles in f32 (sincosf), values in f32.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void rope(T* x, const int* positions, const float* inv_freq, i64 rows, int cols, int half) {
    const i64 pairs_per_row = cols / 2;
    const i64 n = rows * pairs_per_row;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        const i64 row = i / pairs_per_row;
        const int p = (int)(i % pairs_per_row);
        const int head = p / half, f = p % half;
        float s, c;
        sincosf((float)positions[row] * inv_freq[f], &s, &c);
        T* h = x + row * cols + (i64)head * 2 * half;
        const float x1 = to_float(h[f]), x2 = to_float(h[f + half]);
        h[f] = from_float<T>(x1 * c - x2 * s);
        h[f + half] = from_float<T>(x2 * c + x1 * s);
    }
}

#define MVB_ROPE(T)                                                                                                \
    extern "C" __global__ void rope_##T(T* x, const int* positions, const float* inv_freq, i64 rows, int cols,     \
                                        int half) {                                                                \
        rope<T>(x, positions, inv_freq, rows, cols, half);                                                         \
    }
MVB_ROPE(float)
MVB_ROPE(bf16)
MVB_ROPE(f16)
