//! The judge: the `gpt-score` plugin's protocol against a scripted model (exact match without
//! asking, the protocol's prompt, retries, a recorded failure, constrained mode, the host's time
//! outside the plugin's budget), constrained decoding on a real decoder, MedVLMBench's judge
//! prompt given to SmolLM2 against transformers, and judged runs: each verdict written once to
//! `judgements.jsonl`, `mvb report` without the judge model, and a run cut short mid-judging
//! resumed without judging anything twice.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mvb::backend::Device;
use mvb::eval::run::judging::{JUDGEMENTS_FILE, Judgement, LocalModel};
use mvb::eval::run::{self, RunConfig, RunOptions};
use mvb::model::causal::CausalLm;
use mvb::model::chat::Message;
use mvb::model::constrain::Constraint;
use mvb::model::generate::{self, Continue, GenerateOptions as ModelOptions, Prompt};
use mvb::plugin::{
    Builtin, ErrorKind, GenerateOptions, GenerationError, Generator, JudgeOptions, JudgePlugin, Limits, PluginHost,
};
use serde_json::Value;

use crate::common::{host, host_with, root};
use crate::decoder::{greedy, ids, reference};
use crate::gguf::smollm2;

/// A model that replies from a script (repeating its last line) and records what it was asked.
#[derive(Default)]
struct Scripted {
    replies: Mutex<VecDeque<String>>,
    asked: Mutex<Vec<(String, GenerateOptions)>>,
    delay: Duration,
}

impl Scripted {
    fn new(replies: &[&str], delay: Duration) -> Arc<Self> {
        let replies = replies.iter().map(|r| (*r).to_owned()).collect();
        Arc::new(Scripted { replies: Mutex::new(replies), asked: Mutex::default(), delay })
    }

    fn asked(&self) -> Vec<(String, GenerateOptions)> {
        self.asked.lock().expect("lock").clone()
    }
}

impl Generator for Scripted {
    fn generate(&self, prompt: &str, options: &GenerateOptions) -> Result<String, GenerationError> {
        self.asked.lock().expect("lock").push((prompt.to_owned(), options.clone()));
        std::thread::sleep(self.delay);
        let mut replies = self.replies.lock().expect("lock");
        let reply = if replies.len() > 1 { replies.pop_front() } else { replies.front().cloned() };
        Ok(reply.unwrap_or_default())
    }
}

fn gpt_score(host: &PluginHost, model: Arc<dyn Generator>) -> JudgePlugin {
    let source = Builtin::find("gpt-score").expect("gpt-score is built in").source();
    host.judge(&source, Some(model)).expect("gpt-score starts")
}

const FREE: JudgeOptions = JudgeOptions { constrained: false };

#[test]
fn an_exact_match_scores_100_without_asking_the_model() {
    let model = Scripted::new(&["1"], Duration::ZERO);
    let mut judge = gpt_score(&host(), model.clone());
    let v = judge.judge("What is it?", "pneumonia", "pneumonia", FREE).expect("verdict");
    assert_eq!((v.score, v.model_calls, v.rationale.as_str()), (100.0, 0, "exact match"));
    assert!(model.asked().is_empty());
    // Exactly: a different case is not a match.
    let v = judge.judge("What is it?", "pneumonia", "Pneumonia", FREE).expect("verdict");
    assert_eq!((v.score, v.model_calls), (1.0, 1));
}

#[test]
fn the_protocols_prompt_is_asked_and_unparseable_replies_are_retried() {
    let model = Scripted::new(&["Score: 80", "  85 \nThe answer is close.\nIt misses the side."], Duration::ZERO);
    let mut judge = gpt_score(&host(), model.clone());
    let v = judge.judge("Where is the lesion?", "left lung", "right lung", FREE).expect("verdict");
    assert_eq!((v.score, v.model_calls, v.rationale.as_str()), (85.0, 2, "It misses the side."));
    let asked = model.asked();
    let (prompt, first) = &asked[0];
    assert!(prompt.starts_with("[Question]\nWhere is the lesion?\n\n[True Answer]\nleft lung\n\n[End of True Answer]"));
    assert!(prompt.contains("[Prediction]\nright lung\n\n[End of prediction]\n\n[System]\nWe would like"));
    assert_eq!(
        first.system.as_deref(),
        Some("You are a helpful and precise assistant for checking the quality of the answer of medical VQA task")
    );
    assert_eq!((first.temperature, first.constraint.is_none()), (0.0, true), "greedy first, free-form");
    assert_eq!((asked[1].1.temperature, asked[1].1.seed), (0.7, 1), "seeded sampling on a retry");
}

#[test]
fn a_judge_without_a_score_after_its_retries_is_a_recorded_failure() {
    let model = Scripted::new(&["I would rate it highly."], Duration::ZERO);
    let mut judge = gpt_score(&host(), model.clone());
    let e = judge.judge("Q?", "a", "b", FREE).expect_err("no score, no verdict");
    assert_eq!(e.kind(), Some(ErrorKind::Undefined), "{e}");
    assert!(e.to_string().contains("11 replies"), "{e}");
    assert_eq!(model.asked().len(), 11, "the first attempt and 10 retries");
    // Out of range is no score either.
    let mut judge = gpt_score(&host(), Scripted::new(&["150"], Duration::ZERO));
    assert_eq!(judge.judge("Q?", "a", "b", FREE).expect_err("150 is no score").kind(), Some(ErrorKind::Undefined));
}

#[test]
fn constrained_mode_asks_for_an_integer_line_once() {
    let model = Scripted::new(&["42\nok"], Duration::ZERO);
    let mut judge = gpt_score(&host(), model.clone());
    let v = judge.judge("Q?", "a", "b", JudgeOptions { constrained: true }).expect("verdict");
    assert_eq!((v.score, v.model_calls), (42.0, 1));
    assert_eq!(model.asked()[0].1.constraint, Some(Constraint::IntegerLine { min: 1, max: 100 }));
}

#[test]
fn time_spent_generating_does_not_count_against_the_plugins_budget() {
    let host = host_with(Limits { call_budget: Duration::from_millis(500), ..Limits::default() });
    // Three slow replies (1.2 s of host time in all, over twice the budget) in one call.
    let model = Scripted::new(&["no", "no", "70"], Duration::from_millis(400));
    let mut judge = gpt_score(&host, model.clone());
    let v = judge.judge("Q?", "a", "b", FREE).expect("the host's time is not the plugin's");
    assert_eq!((v.score, v.model_calls), (70.0, 3));
}

fn tiny_llama() -> CausalLm {
    CausalLm::load_dir(&root().join("tests/fixtures/decoder/tiny-llama"), &Device::cpu()).expect("tiny llama loads")
}

#[test]
fn constrained_replies_of_a_real_decoder_always_take_the_shape() {
    let lm = tiny_llama();
    let opts = greedy(12);
    for (i, user) in ["Rate this answer.", "How good is it, from 1 to 100?", "x"].iter().enumerate() {
        let integer = Constraint::IntegerLine { min: 1, max: 100 };
        let reply = lm.reply(Some("You judge."), user, &opts, Some(&integer)).expect("reply");
        let first = reply.split('\n').next().expect("a first line");
        let value: u32 = first.parse().unwrap_or_else(|_| panic!("{reply:?} starts with a number"));
        assert!((1..=100).contains(&value) && reply.contains('\n'), "{reply:?}");
        let choices = Constraint::OneOf(vec!["yes".into(), "no".into(), "unsure".into()]);
        let sampled = ModelOptions { temperature: 1.0, seed: i as u64, ..greedy(12) };
        for o in [&opts, &sampled] {
            let reply = lm.reply(None, user, o, Some(&choices)).expect("reply");
            assert!(["yes", "no", "unsure"].contains(&reply.as_str()), "{reply:?}");
        }
    }
    // Free replies are unchanged by the machinery: no constraint equals plain generation.
    let text = lm.prompt("Rate this answer.", false).expect("template");
    let plain = lm.generate(&[text], &opts, |_, _| {}).expect("generates").remove(0).0;
    assert_eq!(lm.reply(None, "Rate this answer.", &opts, None).expect("reply"), plain);
}

#[test]
fn smollm2_judges_the_protocols_prompt_as_transformers_does() {
    let Some(path) = smollm2("smollm2_judges_the_protocols_prompt_as_transformers_does") else { return };
    let judge_model = LocalModel(CausalLm::load_gguf(&path, &Device::cpu(), true).expect("loads"));
    let lm = &judge_model.0;
    let r = reference("smollm2-judge");
    let chat = lm.chat.as_ref().expect("SmolLM2 has a chat template");
    for case in r["cases"].as_array().expect("cases") {
        let text = |k: &str| case[k].as_str().unwrap_or_else(|| panic!("{k}")).to_owned();
        let messages = [Message { role: "system".into(), content: text("system") }, Message::user(text("user"))];
        let templated = chat.render(&messages, true).expect("renders");
        assert_eq!(templated, text("templated"), "the judge prompt through the chat template");
        let input = lm.encode(&templated).expect("encodes");
        assert_eq!(input, ids(&case["input_ids"]), "token ids of the judge prompt");
        let want = ids(&case["greedy"]["new_ids"]);
        let got = generate::generate(&lm.model, lm.device(), &[Prompt::text(input)], &greedy(want.len()), |_, _| {
            Continue::Yes
        })
        .expect("generates")
        .remove(0)
        .ids;
        let agree = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        let margins = case["greedy"]["top2_margins"].as_array().expect("margins");
        let margin = margins.get(agree).and_then(Value::as_f64);
        assert!(
            agree == want.len() || margin.is_some_and(|m| m < 1e-3),
            "{:?}: greedy tokens agree for {agree} of {} (margin {margin:?})",
            text("candidate"),
            want.len()
        );
        // The judge's own path (`generation.generate`) gives the same reply up to the end of turn.
        let reply = judge_model
            .generate(
                &text("user"),
                &GenerateOptions {
                    system: Some(text("system")),
                    max_tokens: want.len() as u32,
                    temperature: 0.0,
                    seed: 0,
                    stop: Vec::new(),
                    constraint: None,
                },
            )
            .expect("replies");
        let until_eos: Vec<u32> = want.iter().copied().take_while(|t| !lm.eos.contains(t)).collect();
        if agree == want.len() {
            assert_eq!(reply, lm.decode(&until_eos).expect("decodes"), "{:?}", text("candidate"));
        }
    }
}

/// A run of the tiny LLaVA on 16 PneumoniaMNIST VQA questions (8 open), judged by `judge` in
/// `mode` (tiny-llama, random weights: a judge only for the pipeline).
fn judged_config(judge: &Path, constrained: bool) -> RunConfig {
    let text = format!(
        r#"strategies = ["ots"]
metrics = ["vqa"]

[bootstrap]
replicates = 20

[generation]
max_new_tokens = 4

[judge]
model = "{judge}"
constrained = {constrained}

[[models]]
name = "llava"
path = "{llava}"
family = "llava"
group = "generalist"

[[datasets]]
name = "pneumonia-vqa"
dataset = "pneumoniamnist-vqa"
limit = 16
"#,
        judge = judge.display(),
        llava = root().join("tests/fixtures/decoder/tiny-llava").display(),
    );
    RunConfig::parse(&text, "judged.toml", &root()).expect("the config parses")
}

/// The tiny Llama fixture as a judge: its context raised from 128 to 1024 positions (rotary
/// embeddings have no table to outgrow) so that the protocol's ~500-token prompt fits.
fn tiny_judge(to: &Path) -> PathBuf {
    let from = root().join("tests/fixtures/decoder/tiny-llama");
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(&from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
    let config = std::fs::read_to_string(to.join("config.json")).expect("config");
    let longer = config.replace("\"max_position_embeddings\": 128", "\"max_position_embeddings\": 1024");
    assert_ne!(config, longer, "the fixture's context is 128");
    std::fs::write(to.join("config.json"), longer).expect("write");
    to.to_owned()
}

fn judgements(dir: &Path) -> Vec<Judgement> {
    let text = std::fs::read_to_string(dir.join(JUDGEMENTS_FILE)).expect("judgements.jsonl");
    text.lines().map(|l| serde_json::from_str(l).expect("a verdict line")).collect()
}

fn run_into(config: &RunConfig, out: &Path, resume: bool) -> run::RunOutcome {
    let options = RunOptions { out: out.to_owned(), resume, overwrite: false, shard: None };
    run::run(&host(), config, &options, &mut |_| {}).expect("the run completes")
}

fn results_json(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("results")).expect("JSON")
}

#[test]
fn a_judged_run_records_each_verdict_once_and_reports_without_the_judge() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let judge_dir = tiny_judge(&tmp.path().join("judge"));
    let config = judged_config(&judge_dir, true);
    let out = tmp.path().join("out");
    let outcome = run_into(&config, &out, false);
    let verdicts = judgements(&out);
    let cases: HashSet<_> = verdicts.iter().map(|j| j.case.clone()).collect();
    assert_eq!(cases.len(), verdicts.len(), "each distinct case judged once");
    assert!(!verdicts.is_empty() && verdicts.iter().all(|j| j.by.mode == "constrained" && j.score.is_some()));
    assert_eq!(outcome.results.vqa_primary.as_deref(), Some("gpt-score-overall"));
    let results = results_json(&out);
    assert_eq!(results["judge"]["units"][0]["open"], 8, "{}", results["judge"]);
    assert_eq!(results["judge"]["units"][0]["missing"], 0);
    let overall = results["results"].as_array().expect("rows").iter().find(|r| r["metric"] == "gpt-score-overall");
    assert!(overall.and_then(|r| r["point"].as_f64()).is_some_and(|v| (0.0..=1.0).contains(&v)), "{overall:?}");
    // The report reads the verdicts: with the judge model gone it gives the same results.
    let before = std::fs::read(out.join("results.json")).expect("results");
    std::fs::remove_dir_all(&judge_dir).expect("remove the judge");
    run::report(&host(), &out, run::BootstrapOverride::default(), &mut |_| {}).expect("report");
    assert_eq!(std::fs::read(out.join("results.json")).expect("results"), before, "byte-identical");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(report.contains("## Judge") && report.contains("constrained replies"), "{report}");
}

#[test]
fn a_run_cut_short_while_judging_resumes_without_judging_twice() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let judge_dir = tiny_judge(&tmp.path().join("judge"));
    // Free-form: the random tiny judge never writes a score, so every asked case is a failure.
    let config = judged_config(&judge_dir, false);
    let (whole, cut) = (tmp.path().join("whole"), tmp.path().join("cut"));
    run_into(&config, &whole, false);
    let all = judgements(&whole);
    let failed = all.iter().filter(|j| j.score.is_none()).count();
    assert!(failed >= 2 && all.iter().all(|j| j.score.is_none() || j.model_calls == Some(0)), "{all:?}");
    // What a kill -9 leaves: the first verdicts, and half a line.
    run_into(&config, &cut, false);
    let text = std::fs::read_to_string(cut.join(JUDGEMENTS_FILE)).expect("verdicts");
    let keep: Vec<&str> = text.lines().take(1).collect();
    let torn = &text.lines().nth(1).expect("a second verdict")[..20];
    std::fs::write(cut.join(JUDGEMENTS_FILE), format!("{}\n{torn}", keep.join("\n"))).expect("cut");
    run_into(&config, &cut, true);
    let resumed = judgements(&cut);
    assert_eq!(resumed.len(), all.len(), "the missing verdicts made, none twice");
    let cases: HashSet<_> = resumed.iter().map(|j| j.case.clone()).collect();
    assert_eq!(cases.len(), resumed.len());
    assert_eq!(std::fs::read(cut.join("results.json")).ok(), std::fs::read(whole.join("results.json")).ok());
    let results = results_json(&cut);
    assert_eq!(results["judge"]["failed"].as_u64(), Some(failed as u64), "failures are counted");
}

#[test]
fn a_run_killed_mid_judging_by_the_os_resumes_without_judging_twice() {
    let Some(model) = smollm2("a_run_killed_mid_judging_by_the_os_resumes_without_judging_twice") else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = judged_config(&model, true);
    let config_path = tmp.path().join("judged.toml");
    std::fs::write(&config_path, toml::to_string(&config).expect("TOML")).expect("config");
    let out = tmp.path().join("out");
    let args = |resume: bool| -> Vec<String> {
        let mut a = vec!["run".into(), config_path.display().to_string(), "--out".into(), out.display().to_string()];
        a.extend(resume.then(|| "--resume".to_owned()));
        a
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mvb"))
        .args(args(false))
        .current_dir(root())
        .env("MVB_CACHE_DIR", root().join("target/test-cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mvb starts");
    let file = out.join(JUDGEMENTS_FILE);
    let lines = |p: &PathBuf| std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0);
    let start = std::time::Instant::now();
    while lines(&file) < 2 && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let before = lines(&file);
    assert!(before >= 2, "the run was judging when killed");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mvb"))
        .args(args(true))
        .current_dir(root())
        .env("MVB_CACHE_DIR", root().join("target/test-cache"))
        .output()
        .expect("mvb resumes");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let verdicts = judgements(&out);
    let cases: HashSet<_> = verdicts.iter().map(|j| j.case.clone()).collect();
    assert_eq!(cases.len(), verdicts.len(), "no case judged twice");
    assert!(verdicts.len() >= before);
    assert_eq!(results_json(&out)["judge"]["units"][0]["missing"], 0);
}

#[test]
fn a_rationale_is_escaped_and_bounded_before_it_reaches_a_report() {
    let reply = format!("77\n\u{1b}[2J\u{202e}forged\n{}", "x".repeat(100_000));
    let model = Scripted::new(&[reply.as_str()], Duration::ZERO);
    let v = gpt_score(&host(), model).judge("Q?", "a", "b", FREE).expect("verdict");
    assert_eq!(v.score, 77.0);
    assert!(v.rationale.len() < 8192 && v.rationale.contains("bytes cut by the host"), "{}", v.rationale.len());
    let model = Scripted::new(&["77\n\u{1b}[2J\u{202e}forged"], Duration::ZERO);
    let v = gpt_score(&host(), model).judge("Q?", "a", "b", FREE).expect("verdict");
    assert!(!v.rationale.contains('\u{1b}') && !v.rationale.contains('\u{202e}'), "{:?}", v.rationale);
}
