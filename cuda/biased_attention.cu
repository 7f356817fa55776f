// biased_attention.cu: attention with an additive score bias (Swin's window attention: the
// relative position bias plus the shifted-window mask, transformers' SwinAttention), one warp per
// (batch element, head, query row), online softmax over the keys (FlashAttention's running max
// and sum), f32 accumulation. Windows are short (49 keys for Swin-T), so a plain kernel serves.
//
//   attn_bias_T   out[b, i, h*dim + d] = sum_j softmax_j(scale * q_i.k_j + bias[b % groups, h, i, j]) v_j[d]
//                 q, k, v: element (b, pos, h, d) at b*bs + pos*rs + h*dim + d (a fused QKV
//                 projection's columns); bias f32 [groups, heads, q_len, kv_len]; dim <= 128.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void attn_bias(const T* q, const T* k, const T* v, const float* bias, T* out, int batch,
                                          int heads, int q_len, int kv_len, int dim, i64 q_bs, i64 q_rs, i64 kv_bs,
                                          i64 kv_rs, int groups, float scale) {
    const i64 row = blockIdx.x * (i64)(blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= (i64)batch * heads * q_len) return;
    const int i = (int)(row % q_len), h = (int)((row / q_len) % heads);
    const i64 b = row / ((i64)q_len * heads);
    const T* qr = q + b * q_bs + i * q_rs + h * dim;
    const float* br = bias + (((b % groups) * heads + h) * (i64)q_len + i) * kv_len;
    float qv[4], acc[4];
    for (int s = 0; s < 4; ++s) {
        const int d = lane + 32 * s;
        qv[s] = d < dim ? to_float(qr[d]) : 0.f;
        acc[s] = 0.f;
    }
    float mx = MVB_NEG_INF, sum = 0.f;
    for (int j = 0; j < kv_len; ++j) {
        const T* kr = k + b * kv_bs + j * kv_rs + h * dim;
        const T* vr = v + b * kv_bs + j * kv_rs + h * dim;
        float dot = 0.f;
        for (int s = 0; s < 4; ++s) {
            const int d = lane + 32 * s;
            if (d < dim) dot = fmaf(qv[s], to_float(kr[d]), dot);
        }
        const float score = warp_sum(dot) * scale + br[j];
        const float next = fmaxf(mx, score);
        const float corr = expf(mx - next), p = expf(score - next);
        sum = sum * corr + p;
        for (int s = 0; s < 4; ++s) {
            const int d = lane + 32 * s;
            acc[s] = acc[s] * corr + (d < dim ? p * to_float(vr[d]) : 0.f);
        }
        mx = next;
    }
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    T* o = out + ((b * q_len + i) * (i64)heads + h) * dim;
    for (int s = 0; s < 4; ++s) {
        const int d = lane + 32 * s;
        if (d < dim) o[d] = from_float<T>(acc[s] * inv);
    }
}

#define MVB_BIASED(T)                                                                                              \
    extern "C" __global__ void attn_bias_##T(const T* q, const T* k, const T* v, const float* bias, T* out,       \
                                             int batch, int heads, int q_len, int kv_len, int dim, i64 q_bs,       \
                                             i64 q_rs, i64 kv_bs, i64 kv_rs, int groups, float scale) {            \
        attn_bias<T>(q, k, v, bias, out, batch, heads, q_len, kv_len, dim, q_bs, q_rs, kv_bs, kv_rs, groups,      \
                     scale);                                                                                       \
    }
MVB_BIASED(float)
MVB_BIASED(bf16)
MVB_BIASED(f16)
