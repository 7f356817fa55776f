//! The judge's prompt and the reading of its reply, as MedVLMBench's GPT-score scripts define
//! them (`../shared/MEDVLMBENCH.md`, "VQA metrics"). Plain Rust, tested natively.

/// The system message.
pub const SYSTEM: &str =
    "You are a helpful and precise assistant for checking the quality of the answer of medical VQA task";

/// The rating rule, placed after `[System]` in the user message.
pub const RULE: &str = "We would like to request your feedback on the performance of the AI assistant in response to \
the user question displayed above, with reference to the provided ground truth answer. Please rate the helpfulness, \
relevance, accuracy, and level of detail of the assistant's response. Assign an overall score on a scale of 1 to 100, \
where a higher score indicates better overall performance. Please first output a single line containing only the score \
(a single numeric value). In the subsequent line, please provide a comprehensive explanation of your evaluation, \
referencing the ground truth answer to justify your score. Ensure your judgment is unbiased and objective.";

/// The lowest score the model may give.
pub const MIN_SCORE: f64 = 1.0;
/// The highest score (also the exact-match score).
pub const MAX_SCORE: f64 = 100.0;
/// Attempts at a parseable reply in free-form mode: the first and the original's 10 retries.
pub const ATTEMPTS: u32 = 11;
/// The temperature of every attempt after the first.
pub const RETRY_TEMPERATURE: f32 = 0.7;
/// Tokens per reply: the score line and a rationale.
pub const MAX_TOKENS: u32 = 128;

/// The user message for one case.
pub fn user_message(question: &str, reference: &str, candidate: &str) -> String {
    format!(
        "[Question]\n{question}\n\n[True Answer]\n{reference}\n\n[End of True Answer]\n\n[Prediction]\n{candidate}\n\n\
         [End of prediction]\n\n[System]\n{RULE}\n\n"
    )
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The score, from `MIN_SCORE` to `MAX_SCORE`.
    pub score: f64,
    /// The reply's last non-empty line after the first (empty when there is none).
    pub rationale: String,
}

/// Reads a reply: the trimmed first line as a number in range, the last line as the rationale.
pub fn parse(reply: &str) -> Option<Reply> {
    let mut lines = reply.split('\n');
    let first = lines.next()?.trim();
    let score: f64 = first.parse().ok()?;
    if !(score.is_finite() && (MIN_SCORE..=MAX_SCORE).contains(&score)) {
        return None;
    }
    let rationale = lines.map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default().to_string();
    Some(Reply { score, rationale })
}

/// The start of a reply, for an error message.
pub fn excerpt(reply: &str) -> String {
    reply.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_the_score_and_the_last_the_rationale() {
        let r = parse(" 85 \nThe answer names the right organ.\n\nIt misses the side.\n").expect("parses");
        assert_eq!(r, Reply { score: 85.0, rationale: "It misses the side.".into() });
        assert_eq!(parse("7.5").map(|r| r.score), Some(7.5));
        assert_eq!(parse("1e2\nok").map(|r| r.score), Some(100.0));
        for bad in ["Score: 85\n", "", "\n90", "0\nno", "101", "nan", "inf", "85/100"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_user_message_is_the_protocols() {
        let m = user_message("Where?", "left lung", "the right lung");
        assert!(m.starts_with("[Question]\nWhere?\n\n[True Answer]\nleft lung\n\n[End of True Answer]\n\n"));
        assert!(m.contains("[Prediction]\nthe right lung\n\n[End of prediction]\n\n[System]\nWe would like"));
        assert!(m.ends_with("unbiased and objective.\n\n"));
    }
}
