//! mvb judge plugin `gpt-score`: MedVLMBench's "GPT score" judge (`eval/gpt_score*.py` of
//! github.com/ubc-tea/MedVLMBench and `../shared/MEDVLMBENCH.md`, "VQA metrics"), re-implemented
//! from its definition, asking the language model the host runs instead of a remote service.
//!
//! The protocol, per open question (the host judges open questions only):
//! - a candidate equal to the reference (exactly, as the original's `prediction == answer`)
//!   scores 100 without asking the model;
//! - otherwise the model gets the protocol's system message and its user message (question,
//!   true answer, prediction and the rating rule); the first line of the reply, trimmed, is read
//!   as a number (Rust's `f64` parser, which accepts what Python's `float()` accepts except
//!   underscores between digits) and the last non-empty line is the rationale, as the original;
//! - a reply whose first line is not a number from 1 to 100 is asked again, up to 10 retries
//!   (the first attempt greedy, the retries sampled at temperature 0.7 with seeds 1..10 so that a
//!   rerun gives the same verdicts); after the last one the judgement fails with `undefined` and
//!   the host records the failure, never a score. A number outside 1-100 counts as no score (the
//!   original would have accepted it).
//! - Constrained mode (`judge-options.constrained`, beyond the original): the host forces the
//!   reply's first line to be an integer from 1 to 100, so one greedy attempt always parses.

mod protocol;

wit_bindgen::generate!({ world: "judge", path: "../../wit" });

use exports::mvb::plugin::judge_api::{Guest, JudgeInfo, JudgeOptions, Verdict};
use mvb::plugin::generation::{self, Constraint, GenerateOptions, IntegerRange};
use mvb::plugin::types::{Error, ErrorKind};
use protocol::{ATTEMPTS, MAX_SCORE, MIN_SCORE, Reply};

struct Component;

impl Guest for Component {
    fn info() -> JudgeInfo {
        JudgeInfo {
            name: "gpt-score".to_string(),
            description: "MedVLMBench's GPT score: 100 for an exact match, else the 1-100 rating on the first line of \
                          the judge model's reply to the protocol's prompt (up to 10 retries, then a recorded failure)"
                .to_string(),
            min_score: 0.0,
            max_score: MAX_SCORE,
        }
    }

    fn judge(question: String, reference: String, candidate: String, options: JudgeOptions) -> Result<Verdict, Error> {
        if candidate == reference {
            return Ok(Verdict { score: MAX_SCORE, rationale: "exact match".to_string(), model_calls: 0 });
        }
        let prompt = protocol::user_message(&question, &reference, &candidate);
        let attempts = if options.constrained { 1 } else { ATTEMPTS };
        let mut last = String::new();
        for attempt in 0..attempts {
            let reply = generation::generate(&prompt, &generate_options(attempt, options.constrained))?;
            if let Some(Reply { score, rationale }) = protocol::parse(&reply) {
                return Ok(Verdict { score, rationale, model_calls: attempt + 1 });
            }
            last = reply;
        }
        Err(Error {
            kind: ErrorKind::Undefined,
            message: format!(
                "no score from {MIN_SCORE} to {MAX_SCORE} on the first line of any of {attempts} replies; the last \
                 began {:?}",
                protocol::excerpt(&last)
            ),
        })
    }
}

/// Options of attempt `attempt` (from 0): greedy first, then seeded sampling; constrained mode
/// forces an integer line.
fn generate_options(attempt: u32, constrained: bool) -> GenerateOptions {
    let constraint =
        constrained.then_some(Constraint::IntegerLine(IntegerRange { min: MIN_SCORE as i64, max: MAX_SCORE as i64 }));
    GenerateOptions {
        system: Some(protocol::SYSTEM.to_string()),
        max_tokens: protocol::MAX_TOKENS,
        temperature: if attempt == 0 { 0.0 } else { protocol::RETRY_TEMPERATURE },
        seed: u64::from(attempt),
        stop: Vec::new(),
        constraint,
    }
}

export!(Component);
