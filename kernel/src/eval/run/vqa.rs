//! VQA units of `mvb run` (MedVLMBench's OTS strategy): every question of a dataset split
//! answered by a generative model with MedVLMBench's prompts ("{question}" for open questions;
//! questions whose gold answer is yes or no get "Answer the following question about the image
//! with yes or no. {question}"), the model's chat template, greedy decoding, in left-padded
//! batches (greedy results equal one question at a time). A LLaVA model sees the image; a
//! text-only decoder answers from the question alone (a "blind" baseline).

use std::path::Path;

use super::config::GenerationSettings;
use super::error::RunError;
use super::predictions::Answer;
use crate::backend::Device;
use crate::data::{Pixels, Qa, Sample, Split, load_image};
use crate::model::causal::{CausalLm, read_json};
use crate::model::generate::GenerateOptions;
use crate::model::llava::{self, Llava};
use crate::model::{ModelError, resolve};
use crate::plugin::Dataset;

/// What MedVLMBench puts before a question whose gold answer is yes or no.
pub const YES_NO_PREFIX: &str = "Answer the following question about the image with yes or no. ";

/// Samples read from the dataset plugin at a time.
const READ_BATCH: u32 = 256;

/// The prompt MedVLMBench gives for `qa`.
pub fn prompt(qa: &Qa) -> String {
    let gold = qa.answer.trim().to_lowercase();
    if gold == "yes" || gold == "no" { format!("{YES_NO_PREFIX}{}", qa.question) } else { qa.question.clone() }
}

/// A generative model of a run.
#[derive(Debug)]
pub enum Generator {
    /// A vision-language model: answers with the image.
    Llava(Box<Llava>),
    /// A text-only decoder: answers from the question alone.
    Text(Box<CausalLm>),
}

/// Whether `spec` names a generative model: a `.gguf` file, or a folder whose `config.json`
/// describes a LLaVA model or a `*ForCausalLM`.
pub fn is_generative(spec: &str) -> bool {
    if is_gguf(Path::new(spec)) {
        return true;
    }
    let Ok(dir) = resolve(spec) else { return false };
    read_json(&dir.join("config.json")).is_ok_and(|c| {
        c.get("model_type").and_then(|t| t.as_str()) == Some("llava")
            || c.get("architectures")
                .and_then(|a| a.as_array())
                .is_some_and(|a| a.iter().filter_map(|x| x.as_str()).any(|x| x.ends_with("ForCausalLM")))
    })
}

/// Whether `path` names a GGUF file (by its extension).
pub fn is_gguf(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gguf")
}

impl Generator {
    /// Loads `spec` (a GGUF file, a folder or a local HF id) onto `device`.
    pub fn load(spec: &str, device: &Device) -> Result<Generator, ModelError> {
        let path = Path::new(spec);
        if is_gguf(path) {
            return Ok(Generator::Text(Box::new(CausalLm::load(path, device, false)?)));
        }
        let dir = resolve(spec)?;
        if llava::is_llava(&dir) {
            Ok(Generator::Llava(Box::new(Llava::load_dir(&dir, device)?)))
        } else {
            Ok(Generator::Text(Box::new(CausalLm::load_dir(&dir, device)?)))
        }
    }

    /// Whether the model looks at images.
    pub fn sees_images(&self) -> bool {
        matches!(self, Generator::Llava(_))
    }

    /// The answer to each prompt (its image beside it for a vision-language model), trimmed.
    fn answer(&self, prompts: &[String], images: &[Pixels], opts: &GenerateOptions) -> Result<Vec<String>, ModelError> {
        let out = match self {
            Generator::Llava(m) => {
                let texts = prompts.iter().map(|p| m.prompt(p, false)).collect::<Result<Vec<_>, _>>()?;
                m.generate(&texts, images, opts, |_, _| {})?
            }
            Generator::Text(lm) => {
                let texts = prompts.iter().map(|p| lm.prompt(p, false)).collect::<Result<Vec<_>, _>>()?;
                lm.generate(&texts, opts, |_, _| {})?
            }
        };
        Ok(out.into_iter().map(|(text, _)| text.trim().to_owned()).collect())
    }
}

/// The ids and answers of `split` of `dataset` (its first `limit` samples), generated in
/// batches; `progress(done, total)` after each batch.
pub fn answers(
    generator: &Generator,
    dataset: &mut Dataset,
    (split, limit): (Split, Option<u64>),
    settings: &GenerationSettings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Vec<String>, Vec<Answer>), RunError> {
    let root = dataset.data_dir().map(Path::to_path_buf).unwrap_or_default();
    let name = dataset.info().name.clone();
    let opts = GenerateOptions { max_new_tokens: settings.max_new_tokens, ..GenerateOptions::default() };
    let (mut ids, mut answers) = (Vec::new(), Vec::new());
    let batches = dataset.batches(split, limit, READ_BATCH);
    let total = batches.total();
    for samples in batches {
        let samples: Vec<Sample> =
            samples.map_err(|e| RunError::Usage(format!("dataset `{name}`: reading {split} samples: {e}")))?;
        for chunk in samples.chunks(settings.batch_size.max(1)) {
            let sample_err =
                |s: &Sample, m: String| RunError::Usage(format!("dataset `{name}`, sample `{}`: {m}", s.id));
            let mut qas = Vec::with_capacity(chunk.len());
            let mut images = Vec::new();
            for s in chunk {
                let qa = s.qa.clone().ok_or_else(|| sample_err(s, "has no question (not a VQA sample)".into()))?;
                if generator.sees_images() {
                    let image = s.image.as_ref().ok_or_else(|| sample_err(s, "has no image".into()))?;
                    images.push(load_image(image, &root).map_err(|e| sample_err(s, e.to_string()))?);
                }
                qas.push(qa);
            }
            let prompts: Vec<String> = qas.iter().map(prompt).collect();
            let texts = generator.answer(&prompts, &images, &opts).map_err(|e| {
                RunError::Usage(format!("dataset `{name}`, samples from `{}`: generating: {e}", chunk[0].id))
            })?;
            for ((s, qa), (prompt, text)) in chunk.iter().zip(qas).zip(prompts.into_iter().zip(texts)) {
                ids.push(s.id.clone());
                answers.push(Answer { qa, prompt, text });
            }
            progress(ids.len() as u64, total);
        }
    }
    Ok((ids, answers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::AnswerKind;

    #[test]
    fn yes_no_questions_get_medvlmbenchs_prefix() {
        let qa = |answer: &str| Qa { question: "Is it?".into(), answer: answer.into(), kind: AnswerKind::Closed };
        assert_eq!(prompt(&qa("Yes")), format!("{YES_NO_PREFIX}Is it?"));
        assert_eq!(prompt(&qa(" no ")), format!("{YES_NO_PREFIX}Is it?"));
        assert_eq!(prompt(&qa("left")), "Is it?");
    }
}
