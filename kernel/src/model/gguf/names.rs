//! Tensor names: GGUF (llama.cpp `gguf-py/gguf/tensor_mapping.py` names) to Hugging Face
//! (`LlamaForCausalLM` / `Qwen2ForCausalLM` state-dict names) and back, and the Q/K row order.
//!
//! llama.cpp's `convert_hf_to_gguf.py` permutes the rows of `q_proj`/`k_proj` (weights and biases)
//! for the `llama` architecture (its `LlamaModel.permute`: per head, `reshape(2, hd/2).swapaxes`),
//! because ggml's rope rotates adjacent pairs where Hugging Face rotates halves. transformers undoes it
//! on load (`LlamaTensorProcessor._reverse_permute_weights`). The `qwen2` converter (`Qwen2Model`)
//! does not permute, and transformers applies no processor for it: Qwen2 GGUFs are in HF order.

/// Per-layer tensors: (GGUF suffix, HF suffix).
const LAYER: [(&str, &str); 13] = [
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.bias", "self_attn.v_proj.bias"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
    ("attn_norm.weight", "input_layernorm.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("rope_freqs.weight", "rotary_emb.inv_freq"),
];

/// Model-level tensors: (GGUF, HF).
const GLOBAL: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// The Hugging Face name of a GGUF tensor (`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`).
pub fn gguf_to_hf_name(name: &str) -> Option<String> {
    if let Some(&(_, hf)) = GLOBAL.iter().find(|(g, _)| *g == name) {
        return Some(hf.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let &(_, hf) = LAYER.iter().find(|(g, _)| *g == suffix)?;
    Some(format!("model.layers.{layer}.{hf}"))
}

/// The GGUF name of a Hugging Face tensor (inverse of [`gguf_to_hf_name`]).
pub fn hf_to_gguf_name(name: &str) -> Option<String> {
    if let Some(&(g, _)) = GLOBAL.iter().find(|(_, h)| *h == name) {
        return Some(g.to_string());
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let &(g, _) = LAYER.iter().find(|(_, h)| *h == suffix)?;
    Some(format!("blk.{layer}.{g}"))
}

/// True when the GGUF tensor's rows are in llama.cpp's rope order for `arch` (llama q/k weights and biases).
pub fn is_rope_permuted(arch: &str, gguf_name: &str) -> bool {
    arch == "llama" && [".attn_q.", ".attn_k."].iter().any(|p| gguf_name.contains(p))
}

/// The row order that turns a llama.cpp-permuted Q or K projection (`heads` heads of `rows / heads`
/// rows) back into Hugging Face order: HF row `h*hd + a*hd/2 + i` is GGUF row `h*hd + 2*i + a`.
/// Use with `QMatrix::permute_rows` (result row k = source row `perm[k]`). `heads` is
/// `head_count` for Q and `head_count_kv` for K. None when `rows` is not a multiple of `2 * heads`.
pub fn qk_unpermute_rows(rows: usize, heads: usize) -> Option<Vec<usize>> {
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return None;
    }
    let hd = rows / heads;
    let mut perm = Vec::with_capacity(rows);
    for h in 0..heads {
        for a in 0..2 {
            for i in 0..hd / 2 {
                perm.push(h * hd + 2 * i + a);
            }
        }
    }
    Some(perm)
}
