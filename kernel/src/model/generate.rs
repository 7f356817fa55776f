//! Text generation with a decoder (transformers' `generate`): a KV cache, greedy decoding
//! (MedVLMBench's setting) or temperature / top-p sampling with a seed, end-of-sequence ids,
//! stop strings and `max_new_tokens`. Many prompts of different lengths run as one batch,
//! left-padded with a padding mask and per-row positions (`cumsum(mask) - 1`) as transformers
//! does, so greedy results equal one prompt at a time.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::ModelError;
use super::llama::Llama;
use crate::backend::{Array, Device};
use crate::tensor::Tensor;

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// New tokens at most.
    pub max_new_tokens: usize,
    /// 0 for greedy decoding; otherwise logits are divided by it before sampling.
    pub temperature: f32,
    /// Nucleus sampling: the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: f32,
    /// Seed of the sampler.
    pub seed: u64,
    /// Ids that end a sequence (not included in the text).
    pub eos: Vec<u32>,
    /// Strings that end a sequence (the text is cut before them).
    pub stop: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 128,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            eos: Vec::new(),
            stop: Vec::new(),
        }
    }
}

/// A prompt: its token ids, and optionally rows of its embeddings replaced (LLaVA's image
/// features at the image-token positions).
#[derive(Debug)]
pub struct Prompt {
    /// Token ids.
    pub ids: Vec<u32>,
    /// `(positions, rows)`: `rows` (`[positions.len(), hidden]`) replace the embeddings there.
    pub splice: Option<(Vec<usize>, Array)>,
}

impl Prompt {
    /// A prompt of plain token ids.
    pub fn text(ids: Vec<u32>) -> Self {
        Prompt { ids, splice: None }
    }
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-sequence id.
    Eos,
    /// A stop string (decided by the caller's `on_token`).
    Stop,
    /// `max_new_tokens`.
    Length,
}

/// The generated ids of one prompt and why it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// New token ids (without the end-of-sequence id).
    pub ids: Vec<u32>,
    /// Why generation ended.
    pub finish: Finish,
}

/// What `on_token` tells the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continue {
    /// Go on.
    Yes,
    /// This sequence hit a stop string: end it.
    Stop,
}

/// What steers a generation beyond the options: which tokens each row may take next (a
/// constraint on the reply's shape) and what happens after each token (streaming, stop strings).
pub trait Steer {
    /// Narrows row `row`'s next-token logits (sets those of forbidden tokens to -inf); the
    /// default allows every token.
    fn mask(&mut self, _row: usize, _logits: &mut [f32]) -> Result<(), ModelError> {
        Ok(())
    }

    /// Called for each new token of each live row, in order.
    fn on_token(&mut self, row: usize, id: u32) -> Continue;
}

/// A closure as a [`Steer`] that allows every token.
struct OnToken<F>(F);

impl<F: FnMut(usize, u32) -> Continue> Steer for OnToken<F> {
    fn on_token(&mut self, row: usize, id: u32) -> Continue {
        (self.0)(row, id)
    }
}

/// Generates for every prompt at once. `on_token(row, id)` is called for each new token of
/// each live row, in order (for streaming and stop strings).
pub fn generate(
    model: &Llama,
    dev: &Device,
    prompts: &[Prompt],
    opts: &GenerateOptions,
    on_token: impl FnMut(usize, u32) -> Continue,
) -> Result<Vec<Generated>, ModelError> {
    generate_steered(model, dev, prompts, opts, &mut OnToken(on_token))
}

/// [`generate`] with a [`Steer`] that may also narrow each row's choices.
pub fn generate_steered(
    model: &Llama,
    dev: &Device,
    prompts: &[Prompt],
    opts: &GenerateOptions,
    steer: &mut dyn Steer,
) -> Result<Vec<Generated>, ModelError> {
    let batch = prompts.len();
    if batch == 0 {
        return Ok(Vec::new());
    }
    let longest = prompts.iter().map(|p| p.ids.len()).max().unwrap_or(0);
    if longest == 0 {
        return Err(ModelError::Input("an empty prompt".into()));
    }
    let capacity = longest + opts.max_new_tokens;
    if capacity > model.config().max_positions {
        return Err(ModelError::Input(format!(
            "{longest} prompt tokens + {} new exceed the model's {} positions",
            opts.max_new_tokens,
            model.config().max_positions
        )));
    }
    let mut cache = model.cache(dev, batch, capacity)?;
    let (x, mut mask, mut next_pos) = prefill_inputs(model, dev, prompts, longest)?;
    let positions = prefill_positions(&mask, longest);
    let last: Vec<usize> = (0..batch).map(|b| b * longest + longest - 1).collect();
    let mut logits = model.forward_logits(dev, x, &mut cache, &positions, &mask, &last)?;
    let mut out: Vec<Generated> = (0..batch).map(|_| Generated { ids: Vec::new(), finish: Finish::Length }).collect();
    let mut live = vec![true; batch];
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let every_row: Vec<usize> = (0..batch).collect();
    for step in 0..opts.max_new_tokens {
        let mut next = Vec::with_capacity(batch);
        for (b, &alive) in live.iter().enumerate() {
            if alive {
                steer.mask(b, logits.row_mut(b))?;
            }
            next.push(pick(logits.row(b), opts, &mut rng));
        }
        for (b, &id) in next.iter().enumerate() {
            if !live[b] {
                continue;
            }
            if opts.eos.contains(&id) {
                (live[b], out[b].finish) = (false, Finish::Eos);
                continue;
            }
            out[b].ids.push(id);
            if steer.on_token(b, id) == Continue::Stop {
                (live[b], out[b].finish) = (false, Finish::Stop);
            }
        }
        if step + 1 == opts.max_new_tokens || !live.contains(&true) {
            break;
        }
        mask = extend_mask(&mask, batch, cache.len());
        let x = model.embed(dev, &next)?.reshape([batch, 1, model.config().hidden])?;
        logits = model.forward_logits(dev, x, &mut cache, &next_pos, &mask, &every_row)?;
        next_pos.iter_mut().for_each(|p| *p += 1);
    }
    Ok(out)
}

/// Left-padded prompt embeddings `[batch, longest, hidden]` with splices applied, the padding
/// mask, and each row's next position.
fn prefill_inputs(
    model: &Llama,
    dev: &Device,
    prompts: &[Prompt],
    longest: usize,
) -> Result<(Array, Vec<u32>, Vec<u32>), ModelError> {
    let pad = 0u32;
    let mut ids = Vec::with_capacity(prompts.len() * longest);
    let mut mask = Vec::with_capacity(prompts.len() * longest);
    for p in prompts {
        let padding = longest - p.ids.len();
        ids.extend(std::iter::repeat_n(pad, padding).chain(p.ids.iter().copied()));
        mask.extend(std::iter::repeat_n(0u32, padding).chain(std::iter::repeat_n(1, p.ids.len())));
    }
    let mut x = model.embed(dev, &ids)?;
    for (b, p) in prompts.iter().enumerate() {
        if let Some((at, rows)) = &p.splice {
            let shift = b * longest + longest - p.ids.len();
            let at: Vec<usize> = at.iter().map(|&i| shift + i).collect();
            dev.scatter_rows(&mut x, &at, rows)?;
        }
    }
    let next = prompts.iter().map(|p| p.ids.len() as u32).collect();
    Ok((x.reshape([prompts.len(), longest, model.config().hidden])?, mask, next))
}

/// transformers' `position_ids = cumsum(mask) - 1` (padding at position 1, never seen).
fn prefill_positions(mask: &[u32], len: usize) -> Vec<u32> {
    let mut pos = Vec::with_capacity(mask.len());
    for row in mask.chunks(len) {
        let mut seen = 0u32;
        for &m in row {
            seen += m;
            pos.push(if m == 1 { seen - 1 } else { 1 });
        }
    }
    pos
}

/// The padding mask over `len` positions extended by one real position per row.
fn extend_mask(mask: &[u32], batch: usize, len: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(batch * (len + 1));
    for row in mask.chunks(len) {
        out.extend_from_slice(row);
        out.push(1);
    }
    out
}

/// The index of the first largest of `v` (0 when empty or all −∞), NaN never chosen: the
/// maximum by sixteen lanes, then the first block holding it (both passes vectorise; greedy
/// decoding scans a vocabulary per sequence per step).
fn argmax(v: &[f32]) -> usize {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let blocks = v.chunks_exact(16);
    let tail = blocks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for b in blocks {
        lanes.iter_mut().zip(b).for_each(|(l, &x)| *l = l.max(x));
    }
    let max = lanes.into_iter().fold(tail, f32::max);
    let Some(block) = v.chunks(16).position(|b| b.iter().fold(false, |hit, &x| hit | (x == max))) else { return 0 };
    block * 16 + v[block * 16..].iter().position(|&x| x == max).unwrap_or(0)
}

/// The next token: the arg-max (first on ties, as `torch.argmax`), or a sample.
fn pick(logits: &[f32], opts: &GenerateOptions, rng: &mut ChaCha8Rng) -> u32 {
    if opts.temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f64)> =
        logits.iter().enumerate().map(|(i, &v)| (i as u32, f64::from((v - max) / opts.temperature).exp())).collect();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let mut kept = 0.0;
    let mut keep = probs.len();
    for (i, p) in probs.iter().enumerate() {
        kept += p.1 / total;
        if kept >= f64::from(opts.top_p) {
            keep = i + 1;
            break;
        }
    }
    let kept_total: f64 = probs[..keep].iter().map(|p| p.1).sum();
    let mut u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * kept_total;
    for p in &probs[..keep] {
        u -= p.1;
        if u <= 0.0 {
            return p.0;
        }
    }
    probs[keep - 1].0
}

/// Logits at every position of one prompt, `[len, vocab]` (the parity tests' view).
pub fn prompt_logits(model: &Llama, dev: &Device, prompt: &Prompt) -> Result<Tensor, ModelError> {
    let len = prompt.ids.len();
    let mut cache = model.cache(dev, 1, len)?;
    let (x, mask, _) = prefill_inputs(model, dev, std::slice::from_ref(prompt), len)?;
    let positions = prefill_positions(&mask, len);
    model.forward_logits(dev, x, &mut cache, &positions, &mask, &(0..len).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::argmax;

    /// The first index whose value beats every earlier one: greedy decoding's definition.
    fn first_best(v: &[f32]) -> usize {
        let mut best = 0;
        for (i, &x) in v.iter().enumerate() {
            if x > v[best] {
                best = i;
            }
        }
        best
    }

    #[test]
    fn argmax_is_the_first_largest() {
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for len in [0, 1, 15, 16, 17, 40, 49_153] {
            for _ in 0..20 {
                // Few distinct values, so the maximum repeats; some −∞ (masked tokens) and NaN.
                let v: Vec<f32> = (0..len)
                    .map(|_| match next() % 10 {
                        0 => f32::NEG_INFINITY,
                        1 => f32::NAN,
                        k => (k % 5) as f32 - (next() % 3) as f32,
                    })
                    .collect();
                let v = if v.first().is_some_and(|x| x.is_nan()) { [&[0.0][..], &v[1..]].concat() } else { v };
                assert_eq!(argmax(&v), first_best(&v), "{v:?}");
            }
        }
        assert_eq!(argmax(&[f32::NEG_INFINITY; 20]), 0);
        assert_eq!(argmax(&[]), 0);
    }
}
