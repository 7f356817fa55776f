// elementwise.cu: the element-wise and row-wise kernels of the transformer encoders, f32
// arithmetic on f32, bf16 or f16 storage. Definitions follow PyTorch (`layer_norm` with biased
// variance, `gelu`, `softmax`) and transformers' ACT2FN (`quick_gelu`, `gelu_pytorch_tanh`), as
// the CPU reference does (kernel/src/backend/cpu/elementwise.rs).
//
//   layernorm_T       one warp per row, two passes (mean, then centred variance), f32 gamma/beta
//   bias_act_T        x = act(x + bias) in place (act: 0 none, 1 gelu, 2 gelu tanh, 3 quick gelu)
//   add_T             x[i] += y[i % period] (residual adds; period = row length broadcasts a row)
//   axpy_T            y += alpha * x
//   softmax_T         in-place scaled row softmax with an optional causal mask (unfused baseline)
//   cast_f32_T, cast_T_f32
//   fill_T            every element set to one bit pattern (NaN poisoning in tests)
//   im2col_T          [batch, 3, S, S] f32 pixels -> [batch * g * g, 3 * p * p] patch rows
//   vit_tokens_T      [batch, (1) + g*g, width] = (class token |) patches + positions
//   gather_rows_T     out[i] = x[rows[i]]
//   scatter_rows_T    x[rows[i]] = src[i]
//   rmsnorm_T         one warp per row: x / sqrt(mean(x^2) + eps) * gamma (LlamaRMSNorm), f32 gamma
//   silu_mul_T        gate = silu(gate) * up (SwiGLU)
//   write_positions_T positions start..start+n of a [batch, cap, w] cache = [batch, n, w] rows
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void layernorm(const T* x, T* y, const float* gamma, const float* beta, int rows, int cols,
                                          float eps) {
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const T* xr = x + (i64)row * cols;
    T* yr = y + (i64)row * cols;
    float mean, inv;
    warp_row_stats(xr, cols, lane, eps, mean, inv);
    for (int i = lane; i < cols; i += 32) yr[i] = from_float<T>((to_float(xr[i]) - mean) * inv * gamma[i] + beta[i]);
}

__device__ __forceinline__ float activate(float x, int act) {
    switch (act) {
        case 1: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
        case 2: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        case 3: return x / (1.f + expf(-1.702f * x));
        case 4: return x / (1.f + expf(-x));
        default: return x;
    }
}

template <typename T>
__device__ __forceinline__ void bias_act(T* x, const T* bias, i64 rows, int cols, int act) {
    const i64 n = rows * cols;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = to_float(x[i]);
        if (bias) v += to_float(bias[i % cols]);
        x[i] = from_float<T>(activate(v, act));
    }
}

template <typename T>
__device__ __forceinline__ void add(T* x, const T* y, i64 n, i64 period) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        x[i] = from_float<T>(to_float(x[i]) + to_float(y[i % period]));
}

template <typename T>
__device__ __forceinline__ void axpy(T* y, const T* x, float alpha, i64 n) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        y[i] = from_float<T>(fmaf(alpha, to_float(x[i]), to_float(y[i])));
}

// Rows are (matrix, query) pairs of a [matrices, q_len, kv_len] score tensor.
template <typename T>
__device__ __forceinline__ void softmax(T* x, i64 rows, int cols, float scale, int causal, int q_len) {
    const i64 row = blockIdx.x * (i64)(blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    T* xr = x + row * cols;
    const int limit = causal ? (int)(row % q_len) + (cols - q_len) : cols - 1;  // last visible key
    float mx = MVB_NEG_INF;
    for (int i = lane; i <= limit && i < cols; i += 32) mx = fmaxf(mx, to_float(xr[i]) * scale);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int i = lane; i <= limit && i < cols; i += 32) sum += expf(to_float(xr[i]) * scale - mx);
    sum = warp_sum(sum);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int i = lane; i < cols; i += 32) xr[i] = from_float<T>(i <= limit ? expf(to_float(xr[i]) * scale - mx) * inv : 0.f);
}

template <typename T>
__device__ __forceinline__ void im2col(const float* px, T* out, int batch, int image, int patch) {
    const int g = image / patch, k = 3 * patch * patch;
    const i64 n = (i64)batch * g * g * k;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        const int col = (int)(i % k);
        const i64 prow = i / k;  // (b, gy, gx)
        const int gx = (int)(prow % g), gy = (int)((prow / g) % g);
        const i64 b = prow / ((i64)g * g);
        const int c = col / (patch * patch), ky = (col / patch) % patch, kx = col % patch;
        out[i] = from_float<T>(px[((b * 3 + c) * image + gy * patch + ky) * image + gx * patch + kx]);
    }
}

template <typename T>
__device__ __forceinline__ void vit_tokens(T* out, const T* patches, const T* cls, const T* pos, int batch,
                                           int n_patches, int width) {
    const int extra = cls ? 1 : 0, tokens = n_patches + extra;
    const i64 n = (i64)batch * tokens * width;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        const int d = (int)(i % width);
        const int tok = (int)((i / width) % tokens);
        const i64 b = i / ((i64)tokens * width);
        const float base = tok < extra ? to_float(cls[d]) : to_float(patches[(b * n_patches + tok - extra) * width + d]);
        out[i] = from_float<T>(base + to_float(pos[(i64)tok * width + d]));
    }
}

template <typename T>
__device__ __forceinline__ void gather_rows(const T* x, T* out, const int* rows, int n, int cols) {
    const i64 total = (i64)n * cols;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
        out[i] = x[(i64)rows[i / cols] * cols + i % cols];
}

template <typename T>
__device__ __forceinline__ void scatter_rows(T* x, const T* src, const int* rows, int n, int cols) {
    const i64 total = (i64)n * cols;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
        x[(i64)rows[i / cols] * cols + i % cols] = src[i];
}

template <typename T>
__device__ __forceinline__ void rmsnorm(const T* x, T* y, const float* gamma, int rows, int cols, float eps) {
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const T* xr = x + (i64)row * cols;
    T* yr = y + (i64)row * cols;
    float sq = 0.f;
    for (int i = lane; i < cols; i += 32) {
        const float v = to_float(xr[i]);
        sq = fmaf(v, v, sq);
    }
    const float inv = rsqrtf(warp_sum(sq) / cols + eps);
    for (int i = lane; i < cols; i += 32) yr[i] = from_float<T>(gamma[i] * (to_float(xr[i]) * inv));
}

template <typename T>
__device__ __forceinline__ void silu_mul(T* gate, const T* up, i64 n) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        const float g = to_float(gate[i]);
        gate[i] = from_float<T>(g / (1.f + expf(-g)) * to_float(up[i]));
    }
}

template <typename T>
__device__ __forceinline__ void write_positions(T* cache, const T* src, int batch, int cap, int start, int n, int w) {
    const i64 total = (i64)batch * n * w;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
        const i64 b = i / ((i64)n * w), rest = i % ((i64)n * w);
        cache[(b * cap + start) * w + rest] = src[i];
    }
}

#define MVB_ELEMENTWISE(T)                                                                                         \
    extern "C" __global__ void layernorm_##T(const T* x, T* y, const float* gamma, const float* beta, int rows,     \
                                             int cols, float eps) {                                                \
        layernorm<T>(x, y, gamma, beta, rows, cols, eps);                                                          \
    }                                                                                                              \
    extern "C" __global__ void bias_act_##T(T* x, const T* bias, i64 rows, int cols, int act) {                    \
        bias_act<T>(x, bias, rows, cols, act);                                                                     \
    }                                                                                                              \
    extern "C" __global__ void add_##T(T* x, const T* y, i64 n, i64 period) { add<T>(x, y, n, period); }           \
    extern "C" __global__ void axpy_##T(T* y, const T* x, float alpha, i64 n) { axpy<T>(y, x, alpha, n); }         \
    extern "C" __global__ void softmax_##T(T* x, i64 rows, int cols, float scale, int causal, int q_len) {         \
        softmax<T>(x, rows, cols, scale, causal, q_len);                                                           \
    }                                                                                                              \
    extern "C" __global__ void im2col_##T(const float* px, T* out, int batch, int image, int patch) {              \
        im2col<T>(px, out, batch, image, patch);                                                                   \
    }                                                                                                              \
    extern "C" __global__ void vit_tokens_##T(T* out, const T* patches, const T* cls, const T* pos, int batch,     \
                                              int n_patches, int width) {                                          \
        vit_tokens<T>(out, patches, cls, pos, batch, n_patches, width);                                            \
    }                                                                                                              \
    extern "C" __global__ void gather_rows_##T(const T* x, T* out, const int* rows, int n, int cols) {             \
        gather_rows<T>(x, out, rows, n, cols);                                                                     \
    }                                                                                                              \
    extern "C" __global__ void scatter_rows_##T(T* x, const T* src, const int* rows, int n, int cols) {            \
        scatter_rows<T>(x, src, rows, n, cols);                                                                    \
    }                                                                                                              \
    extern "C" __global__ void rmsnorm_##T(const T* x, T* y, const float* gamma, int rows, int cols, float eps) {   \
        rmsnorm<T>(x, y, gamma, rows, cols, eps);                                                                  \
    }                                                                                                              \
    extern "C" __global__ void silu_mul_##T(T* gate, const T* up, i64 n) { silu_mul<T>(gate, up, n); }             \
    extern "C" __global__ void write_positions_##T(T* cache, const T* src, int batch, int cap, int start, int n,   \
                                                   int w) {                                                        \
        write_positions<T>(cache, src, batch, cap, start, n, w);                                                   \
    }
MVB_ELEMENTWISE(float)
MVB_ELEMENTWISE(bf16)
MVB_ELEMENTWISE(f16)

#define MVB_CASTS(T)                                                                                               \
    extern "C" __global__ void cast_float_##T(const float* x, T* y, i64 n) {                                       \
        for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)          \
            y[i] = from_float<T>(x[i]);                                                                            \
    }                                                                                                              \
    extern "C" __global__ void cast_##T##_float(const T* x, float* y, i64 n) {                                     \
        for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)          \
            y[i] = to_float(x[i]);                                                                                 \
    }
MVB_CASTS(bf16)
MVB_CASTS(f16)

// Bit-pattern fill (0xffffffff is a NaN in f32; 0xffff in bf16 and f16), by 32-bit words.
extern "C" __global__ void fill_u32(u32* x, u32 value, i64 n) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) x[i] = value;
}
