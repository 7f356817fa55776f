// grad.cu: the backward kernels FT-LoRA training needs beyond cuBLAS products, f32 arithmetic on
// f32, bf16 or f16 storage. Each is the derivative of a forward kernel of elementwise.cu, written
// out as PyTorch's autograd computes it and as the CPU reference does
// (kernel/src/backend/cpu/grad.rs): `layer_norm_backward` (gamma and beta frozen), the
// activations' derivatives, and softmax's `dS = P * (dP - rowsum(dP * P))`.
//
//   layernorm_backward_T  one warp per row: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma
//   act_backward_T        dx = dy * act'(x) (act: 1 gelu, 2 gelu tanh, 3 quick gelu, 4 silu)
//   softmax_backward_T    one warp per row, in place: ds = scale * p * (ds - sum(ds * p))
//   copy_cols_T           y[r, col + j] (= or +=) src[r, j] for j < n (column concat, LoRA adds)
//   mul_T                 x *= y (dropout masks)
//   sum_batches_T         out[i] = sum over b of x[b * per + i]
//
// Every kernel loops grid-stride (or returns past the last row) and reaches only the elements
// its wrapper (kernel/src/backend/cuda/grad.rs) checked before the launch.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void layernorm_backward(const T* x, const T* dy, T* dx, const float* gamma, int rows,
                                                   int cols, float eps) {
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows || cols <= 0) return;
    const T* xr = x + (i64)row * cols;
    const T* gr = dy + (i64)row * cols;
    T* out = dx + (i64)row * cols;
    float mean, rstd;
    warp_row_stats(xr, cols, lane, eps, mean, rstd);
    float mg = 0.f, mgx = 0.f;
    for (int i = lane; i < cols; i += 32) {
        const float g = to_float(gr[i]) * gamma[i];
        mg += g;
        mgx = fmaf(g, (to_float(xr[i]) - mean) * rstd, mgx);
    }
    mg = warp_sum(mg) / cols;
    mgx = warp_sum(mgx) / cols;
    for (int i = lane; i < cols; i += 32) {
        const float xhat = (to_float(xr[i]) - mean) * rstd;
        out[i] = from_float<T>(rstd * (to_float(gr[i]) * gamma[i] - mg - xhat * mgx));
    }
}

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// The derivative of the activation `act` (codes as elementwise.cu's `activate`) at x.
__device__ __forceinline__ float act_derivative(float x, int act) {
    switch (act) {
        case 1: {
            const float cdf = 0.5f * (1.f + erff(x * 0.70710678118654752f));
            const float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;
            return cdf + x * pdf;
        }
        case 2: {
            const float c = 0.7978845608028654f;
            const float t = tanhf(c * (x + 0.044715f * x * x * x));
            return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * c * (1.f + 3.f * 0.044715f * x * x);
        }
        case 3: {
            const float s = sigmoid(1.702f * x);
            return s + 1.702f * x * s * (1.f - s);
        }
        case 4: {
            const float s = sigmoid(x);
            return s + x * s * (1.f - s);
        }
        default: return 1.f;
    }
}

template <typename T>
__device__ __forceinline__ void act_backward(const T* x, const T* dy, T* dx, i64 n, int act) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        dx[i] = from_float<T>(to_float(dy[i]) * act_derivative(to_float(x[i]), act));
}

template <typename T>
__device__ __forceinline__ void softmax_backward(const T* p, T* ds, i64 rows, int cols, float scale) {
    const i64 row = blockIdx.x * (i64)(blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const T* pr = p + row * cols;
    T* dr = ds + row * cols;
    float dot = 0.f;
    for (int i = lane; i < cols; i += 32) dot = fmaf(to_float(dr[i]), to_float(pr[i]), dot);
    dot = warp_sum(dot);
    for (int i = lane; i < cols; i += 32) dr[i] = from_float<T>(scale * to_float(pr[i]) * (to_float(dr[i]) - dot));
}

template <typename T>
__device__ __forceinline__ void copy_cols(T* y, const T* src, i64 rows, int n, int cols, int col, int accumulate) {
    const i64 total = rows * n;
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
        const i64 r = i / n;
        const int j = (int)(i % n);
        T* dst = y + r * cols + col + j;
        const float v = to_float(src[i]);
        *dst = from_float<T>(accumulate ? to_float(*dst) + v : v);
    }
}

template <typename T>
__device__ __forceinline__ void mul(T* x, const T* y, i64 n) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        x[i] = from_float<T>(to_float(x[i]) * to_float(y[i]));
}

template <typename T>
__device__ __forceinline__ void sum_batches(const T* x, T* out, int batch, i64 per) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < per; i += (i64)gridDim.x * blockDim.x) {
        float s = 0.f;
        for (int b = 0; b < batch; ++b) s += to_float(x[(i64)b * per + i]);
        out[i] = from_float<T>(s);
    }
}

#define MVB_GRAD(T)                                                                                                \
    extern "C" __global__ void layernorm_backward_##T(const T* x, const T* dy, T* dx, const float* gamma,         \
                                                      int rows, int cols, float eps) {                             \
        layernorm_backward<T>(x, dy, dx, gamma, rows, cols, eps);                                                  \
    }                                                                                                              \
    extern "C" __global__ void act_backward_##T(const T* x, const T* dy, T* dx, i64 n, int act) {                 \
        act_backward<T>(x, dy, dx, n, act);                                                                        \
    }                                                                                                              \
    extern "C" __global__ void softmax_backward_##T(const T* p, T* ds, i64 rows, int cols, float scale) {         \
        softmax_backward<T>(p, ds, rows, cols, scale);                                                             \
    }                                                                                                              \
    extern "C" __global__ void copy_cols_##T(T* y, const T* src, i64 rows, int n, int cols, int col,              \
                                             int accumulate) {                                                     \
        copy_cols<T>(y, src, rows, n, cols, col, accumulate);                                                      \
    }                                                                                                              \
    extern "C" __global__ void mul_##T(T* x, const T* y, i64 n) { mul<T>(x, y, n); }                               \
    extern "C" __global__ void sum_batches_##T(const T* x, T* out, int batch, i64 per) {                           \
        sum_batches<T>(x, out, batch, per);                                                                        \
    }
MVB_GRAD(float)
MVB_GRAD(bf16)
MVB_GRAD(f16)
