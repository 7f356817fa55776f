//! The human side of a run: the console summary, `report.md` (score tables with 95% CIs, the RQ
//! gaps, provenance) and two SVG figures drawn with plotters — `heatmap_auroc.svg`, the primary
//! score by model × dataset with one panel per strategy (the paper's Figure 2), and
//! `forest_gaps.svg`, the RQ gaps with their CIs around a zero line (Figure 3). Everything here
//! is computed from [`Results`], itself computed from the predictions file.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::config::Strategy;
use super::error::{RunError, write_file};
use super::gaps::{Gap, Rq};
use super::results::Results;
use super::scores::UnitResult;
use crate::eval::bootstrap::Estimate;

/// `report.md`.
pub const REPORT_MD: &str = "report.md";
/// The forest plot of the RQ gaps.
pub const FOREST_SVG: &str = "forest_gaps.svg";

/// The heatmap's file name for score `metric` (`heatmap_auroc.svg` for AUROC).
pub fn heatmap_file(metric: &str) -> String {
    let safe: String = metric.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("heatmap_{safe}.svg")
}

/// A score's display name (`AUROC` for `auroc`).
pub fn metric_label(metric: &str) -> String {
    match metric {
        "auroc" => "AUROC".to_owned(),
        "accuracy" => "Accuracy".to_owned(),
        "balanced-accuracy" => "Balanced accuracy".to_owned(),
        "f1" => "F1".to_owned(),
        "closed-accuracy" => "Closed accuracy".to_owned(),
        "open-accuracy" => "Open accuracy".to_owned(),
        "gpt-score-overall" => "GPT score".to_owned(),
        "gpt-score-open" => "GPT score (open)".to_owned(),
        other => other.to_owned(),
    }
}

/// `0.812 [0.750, 0.870]`, with `*` when replicates were skipped; `n/a` when undefined.
pub fn format_estimate(e: &Estimate) -> String {
    if e.point.is_nan() {
        return "n/a".to_owned();
    }
    let star = if e.skipped > 0 { "*" } else { "" };
    if e.lo.is_nan() {
        format!("{:.3} [n/a]{star}", e.point)
    } else {
        format!("{:.3} [{:.3}, {:.3}]{star}", e.point, e.lo, e.hi)
    }
}

/// The units that report `metric` (diagnosis units report the diagnosis scores, VQA units the
/// VQA scores).
fn scored<'a>(results: &'a Results, metric: &'a str) -> impl Iterator<Item = &'a UnitResult> {
    results.units.iter().filter(move |u| u.score(metric).is_some())
}

/// The primary scores: the diagnosis one, then the VQA one.
fn primaries(results: &Results) -> Vec<&str> {
    results.primary.iter().chain(&results.vqa_primary).map(String::as_str).collect()
}

/// The strategies with a `metric` score, in order.
fn strategies(results: &Results, metric: &str) -> Vec<Strategy> {
    let mut s: Vec<Strategy> = scored(results, metric).map(|u| u.key.strategy).collect();
    s.sort();
    s.dedup();
    s
}

/// The models with a `metric` score, in report order.
fn models<'a>(results: &'a Results, metric: &'a str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for u in scored(results, metric) {
        if !out.contains(&u.key.model.as_str()) {
            out.push(&u.key.model);
        }
    }
    out
}

/// The datasets with a `metric` score, in report order.
fn datasets<'a>(results: &'a Results, metric: &str) -> Vec<&'a str> {
    results
        .datasets
        .iter()
        .map(String::as_str)
        .filter(|d| scored(results, metric).any(|u| u.key.dataset == *d))
        .collect()
}

fn any_skipped(results: &Results, metric: &str) -> bool {
    results.units.iter().filter_map(|u| u.score(metric)).any(|b| b.estimate.skipped > 0)
}

/// Pads `cells` into aligned columns.
fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn gap_systems(g: &Gap) -> String {
    format!(
        "{} {} vs {} {}",
        g.generalist.model,
        g.generalist.strategy.label(),
        g.specialist.model,
        g.specialist.strategy.label()
    )
}

/// The console summary: each primary score's table with CIs (diagnosis, then VQA), and the RQ
/// gaps.
pub fn summary(results: &Results) -> String {
    let mut out = String::new();
    let metrics = primaries(results);
    if metrics.is_empty() {
        return "no scores".to_owned();
    }
    for metric in metrics {
        summary_table(&mut out, results, metric);
    }
    if results.gaps.is_empty() {
        let _ =
            writeln!(out, "RQ gaps: none (each family needs generalists and specialists with the strategies compared)");
        return out;
    }
    let _ = writeln!(out, "RQ gaps (generalist - specialist) [95% CI]");
    let mut rows = vec![vec![
        "rq".to_owned(),
        "family".into(),
        "dataset".into(),
        "score".into(),
        "gap [95% CI]".into(),
        "systems".into(),
    ]];
    for g in &results.gaps {
        rows.push(vec![
            g.rq.as_str().to_owned(),
            g.family.clone(),
            g.dataset.clone(),
            metric_label(&g.metric),
            format_gap(&g.estimate),
            gap_systems(g),
        ]);
    }
    out.push_str(&columns(&rows));
    out
}

/// One primary score's console table: a row per model and strategy, a column per dataset.
fn summary_table(out: &mut String, results: &Results, metric: &str) {
    let label = metric_label(metric);
    let b = &results.bootstrap;
    let _ =
        writeln!(out, "{label} [95% CI], {} bootstrap replicates (seed {}), paired per dataset", b.replicates, b.seed);
    let ds = datasets(results, metric);
    let mut rows =
        vec![[vec!["model".to_owned(), "strategy".to_owned()], ds.iter().map(|d| (*d).to_owned()).collect()].concat()];
    for m in models(results, metric) {
        for s in strategies(results, metric) {
            if !results.units.iter().any(|u| u.key.model == m && u.key.strategy == s) {
                continue;
            }
            let mut row = vec![m.to_owned(), s.label().to_owned()];
            for d in &ds {
                row.push(
                    results
                        .unit(m, d, s)
                        .and_then(|u| u.score(metric))
                        .map_or("-".to_owned(), |b| format_estimate(&b.estimate)),
                );
            }
            rows.push(row);
        }
    }
    out.push_str(&columns(&rows));
    if any_skipped(results, metric) {
        let _ = writeln!(out, "* some replicates were skipped ({label} undefined on them); see results.csv");
    }
    out.push('\n');
}

/// `+0.123 [-0.010, +0.250]`.
fn format_gap(e: &Estimate) -> String {
    let star = if e.skipped > 0 { "*" } else { "" };
    if e.lo.is_nan() {
        format!("{:+.3} [n/a]{star}", e.point)
    } else {
        format!("{:+.3} [{:+.3}, {:+.3}]{star}", e.point, e.lo, e.hi)
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// `report.md`'s text: an introduction, one table per score, the RQ gaps and the provenance.
pub fn markdown(results: &Results) -> Result<String, RunError> {
    let mut out = String::new();
    let b = &results.bootstrap;
    let _ = writeln!(out, "# mvb benchmark report\n");
    let _ = writeln!(
        out,
        "Every number below is computed from `predictions.jsonl` in this folder (`mvb report DIR` recomputes \
         it). Each estimate is the score on the full evaluation split, with a 95% CI: the 2.5th and 97.5th \
         percentiles of {} paired bootstrap replicates (seed {}; the same resampled index sets for every \
         model and strategy on a dataset). `*` marks estimates where some replicates were skipped because \
         the score is undefined on them (for example a single class); `results.csv` gives the counts.\n",
        b.replicates, b.seed
    );
    let firsts = primaries(results);
    let mut metrics: Vec<&str> = results.metrics.iter().map(String::as_str).filter(|m| !firsts.contains(m)).collect();
    metrics.splice(0..0, firsts.iter().copied());
    let defined = |m: &&str| scored(results, m).any(|u| u.score(m).is_some_and(|b| !b.estimate.point.is_nan()));
    for metric in metrics.into_iter().filter(defined) {
        score_table(&mut out, results, metric);
    }
    judge_section(&mut out, results);
    if !firsts.is_empty() {
        gaps_section(&mut out, results);
    }
    subgroups_section(&mut out, results);
    provenance(&mut out, results)?;
    Ok(out)
}

/// One score's table: a row per model and strategy, a column per dataset.
fn score_table(out: &mut String, results: &Results, metric: &str) {
    let ds = datasets(results, metric);
    let _ = writeln!(out, "## {} [95% CI]\n", metric_label(metric));
    let _ = writeln!(
        out,
        "| model | group | family | strategy | {} |",
        ds.iter().map(|d| md_escape(d)).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|---|{}", "---|".repeat(ds.len()));
    for m in models(results, metric) {
        for s in strategies(results, metric) {
            let Some(any) = results.units.iter().find(|u| u.key.model == m && u.key.strategy == s) else {
                continue;
            };
            let cells: Vec<String> = ds
                .iter()
                .map(|d| {
                    results
                        .unit(m, d, s)
                        .and_then(|u| u.score(metric))
                        .map_or("–".to_owned(), |b| format_estimate(&b.estimate))
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                md_escape(m),
                any.group.map_or("?", |g| g.as_str()),
                md_escape(any.family.as_deref().unwrap_or("?")),
                s.label(),
                cells.join(" | ")
            );
        }
    }
    out.push('\n');
    if primaries(results).contains(&metric) {
        let _ = writeln!(out, "![{} by model and dataset]({})\n", metric_label(metric), heatmap_file(metric));
    }
}

/// Who judged the open answers, in which mode, and each judged unit's tally (failures and
/// answers not judged yet included).
fn judge_section(out: &mut String, results: &Results) {
    let Some(j) = &results.judge else { return };
    let _ = writeln!(
        out,
        "## Judge
"
    );
    let sha = j.model_sha256.as_deref().map_or("no verdict yet".to_owned(), |s| format!("sha256 {s}"));
    let _ = writeln!(
        out,
        "GPT scores by the judge `{}` with the model `{}` ({sha}), {} replies; {} distinct answers judged, {} \
         without a verdict (left out of the scores, never given one). Verdicts are in `judgements.jsonl`.\n",
        md_escape(&j.plugin),
        md_escape(&j.model),
        j.mode,
        j.verdicts,
        j.failed
    );
    let _ = writeln!(out, "| model | dataset | open questions | judged | exact matches | failed | not judged yet |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for u in &results.units {
        let Some(t) = u.judge else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md_escape(&u.key.model),
            md_escape(&u.key.dataset),
            t.open,
            t.judged,
            t.exact,
            t.failed,
            t.missing
        );
    }
    out.push('\n');
}

/// The RQ gaps of the primary scores: their definitions, a table and the forest plot.
fn gaps_section(out: &mut String, results: &Results) {
    let label = primaries(results).into_iter().map(metric_label).collect::<Vec<_>>().join(" for diagnosis, ");
    let label =
        if results.vqa_primary.is_some() && results.primary.is_some() { format!("{label} for VQA") } else { label };
    let _ = writeln!(out, "## RQ gaps ({label})\n");
    for rq in Rq::ALL {
        let _ = writeln!(out, "- {}: {}", rq.as_str(), rq.description());
    }
    let _ = writeln!(
        out,
        "\nPer model family and dataset; \"best\" is the highest point estimate within the group. The CI is \
         the paired bootstrap of the difference between the two chosen systems.\n"
    );
    if results.gaps.is_empty() {
        let _ = writeln!(out, "No gaps: each family needs generalists and specialists with the strategies compared.\n");
    } else {
        let _ = writeln!(
            out,
            "| RQ | family | dataset | score | best generalist | best specialist | gap [95% CI] | replicates (skipped) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for g in &results.gaps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} {} ({:.3}) | {} {} ({:.3}) | {} | {} ({}) |",
                g.rq.as_str(),
                md_escape(&g.family),
                md_escape(&g.dataset),
                metric_label(&g.metric),
                md_escape(&g.generalist.model),
                g.generalist.strategy.label(),
                g.generalist.point,
                md_escape(&g.specialist.model),
                g.specialist.strategy.label(),
                g.specialist.point,
                format_gap(&g.estimate),
                g.estimate.replicates,
                g.estimate.skipped
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "![RQ gaps with 95% CIs]({FOREST_SVG})\n");
}

/// The primary scores per value of each `[report] subgroups` attribute, and the gap between
/// the best and worst value (`subgroups.csv` has every score).
fn subgroups_section(out: &mut String, results: &Results) {
    if results.config.report.subgroups.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Subgroups
"
    );
    let _ = writeln!(
        out,
        "Each unit's score on the samples of each value of {}, with the same paired bootstrap (replicate r is          the unit's replicate r restricted to the subgroup), and the gap between the best and the worst value          (by point estimate) with the paired bootstrap of their difference. `subgroups.csv` has every score.\n",
        results.config.report.subgroups.iter().map(|a| format!("`{}`", md_escape(a))).collect::<Vec<_>>().join(", ")
    );
    if results.subgroups.is_empty() {
        let _ = writeln!(out, "No unit's samples carry these attributes.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| model | dataset | strategy | attribute | score | value (n): estimate [95% CI] | best - worst [95% CI] |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let firsts = primaries(results);
    for s in &results.subgroups {
        for (m, g) in s.gaps.iter().enumerate().filter(|(_, g)| firsts.contains(&g.metric.as_str())) {
            let values: Vec<String> = s
                .values
                .iter()
                .filter_map(|v| {
                    let sc = v.scores.get(m)?;
                    let shown = match &sc.note {
                        Some(note) if sc.score.boot.estimate.point.is_nan() => md_escape(note),
                        _ => format_estimate(&sc.score.boot.estimate),
                    };
                    Some(format!("{} ({}): {shown}", md_escape(&v.value), v.n))
                })
                .collect();
            let gap = match &g.best_worst {
                Some((b, w)) => format!("{} - {}: {}", md_escape(b), md_escape(w), format_gap(&g.estimate)),
                None => md_escape(g.note.as_deref().unwrap_or("not computable")),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {gap} |",
                md_escape(&s.key.model),
                md_escape(&s.key.dataset),
                s.key.strategy.label(),
                md_escape(&s.attribute),
                metric_label(&g.metric),
                values.join("<br>")
            );
        }
    }
    out.push('\n');
}

/// Versions, bootstrap, metric definitions, probe settings and the configuration.
fn provenance(out: &mut String, results: &Results) -> Result<(), RunError> {
    let b = &results.bootstrap;
    let _ = writeln!(out, "## Provenance\n");
    let _ = writeln!(
        out,
        "- computed by mvb {}; predictions written by mvb {}",
        results.computed_by,
        results.predicted_by.join(", ")
    );
    let _ = writeln!(out, "- bootstrap: {} replicates, seed {} ({})", b.replicates, b.seed, b.generator.describe());
    for (entry, description) in &results.metric_info {
        let _ = writeln!(out, "- metric `{}`: {}", md_escape(entry), description);
    }
    let p = &results.config.probe;
    let _ = writeln!(
        out,
        "- FT-LP: AdamW lr {}, {} epochs, batch {}, weight decay {}, seed {}, class-weighted cross-entropy",
        p.lr, p.epochs, p.batch_size, p.weight_decay, p.seed
    );
    if results.units.iter().any(|u| u.key.strategy == Strategy::Lora) {
        let l = &results.config.lora;
        let _ = writeln!(
            out,
            "- FT-LoRA: LoRA r {}, alpha {}, dropout {} on every linear layer and the position embedding of the \
             image tower, a linear head; AdamW lr {}, {} epochs, batch {}, weight decay {}, seed {}, class-weighted \
             cross-entropy; adapters in PEFT's layout under `adapters/`. \"Fine-tuned\" in the RQ gaps is the better \
             of FT-LP and FT-LoRA; each gap names the system that won",
            l.r, l.alpha, l.dropout, l.lr, l.epochs, l.batch_size, l.weight_decay, l.seed
        );
    }
    if let Some(p) = &results.provenance {
        let _ =
            writeln!(out, "- inputs by SHA-256 (`results.json` has them in full; `--resume` refuses changed ones):");
        let groups = [
            ("model", &p.models),
            ("data of", &p.data),
            ("plugin of", &p.dataset_plugins),
            ("metric", &p.metrics),
            ("judge", &p.judge),
        ];
        for (what, hashes) in groups {
            for (name, hash) in hashes {
                let _ = writeln!(out, "  - {what} `{}`: `{}`", md_escape(name), &hash[..hash.len().min(16)]);
            }
        }
    }
    let config = toml::to_string(&results.config)
        .map_err(|e| RunError::Usage(format!("cannot encode the configuration: {e}")))?;
    let _ = writeln!(out, "- configuration (the last run header of `predictions.jsonl`):\n\n```toml\n{}```", config);
    Ok(())
}

/// A colour for a score in `[0, 1]` (viridis-like stops); grey for NaN.
fn heat_colour(v: f64) -> RGBColor {
    if v.is_nan() {
        return RGBColor(200, 200, 200);
    }
    const STOPS: [(u8, u8, u8); 5] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)];
    let t = v.clamp(0.0, 1.0) * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn plot_error(e: impl std::fmt::Display) -> RunError {
    RunError::Plot(e.to_string())
}

/// An axis `0..n` with cells `[i, i + 1]`; ask for [`centred_labels`] labels so that the key
/// points fall every half unit and [`centre_index`] names the centres.
fn centred_axis(n: usize) -> std::ops::Range<f64> {
    0.0..n.max(1) as f64
}

/// The label count that makes the key points of [`centred_axis`] every half unit.
fn centred_labels(n: usize) -> usize {
    2 * n.max(1) + 1
}

/// The cell whose centre `v` is, if any.
fn centre_index(v: f64, n: usize) -> Option<usize> {
    let i = (v - 0.5).round();
    ((v - 0.5 - i).abs() < 1e-9 && i >= 0.0 && (i as usize) < n).then_some(i as usize)
}

/// The heatmap of `metric` (models × datasets, one panel per strategy) as SVG text.
pub fn heatmap_svg(results: &Results, metric: &str) -> Result<String, RunError> {
    let ms = models(results, metric);
    let ds = datasets(results, metric);
    let ss = strategies(results, metric);
    let label = metric_label(metric);
    let (cell_w, cell_h) = (120u32, 44u32);
    let label_w = 20 + 8 * ms.iter().map(|m| m.len()).max().unwrap_or(4) as u32;
    let panel_w = label_w + cell_w * ds.len().max(1) as u32 + 20;
    let panel_h = 70 + 40 + cell_h * ms.len().max(1) as u32;
    let size = ((panel_w * ss.len().max(1) as u32).max(560), panel_h + 40);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let root = root
            .titled(&format!("{label} by model and dataset (95% CIs in report.md)"), ("sans-serif", 20))
            .map_err(plot_error)?;
        let panels = root.split_evenly((1, ss.len().max(1)));
        for (panel, strategy) in panels.iter().zip(&ss) {
            let mut chart = ChartBuilder::on(panel)
                .caption(strategy.label(), ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(label_w)
                .build_cartesian_2d(centred_axis(ds.len()), centred_axis(ms.len()))
                .map_err(plot_error)?;
            let x_fmt = |v: &f64| centre_index(*v, ds.len()).map(|i| ds[i].to_owned()).unwrap_or_default();
            // The first model on top.
            let y_fmt =
                |v: &f64| centre_index(*v, ms.len()).map(|i| ms[ms.len() - 1 - i].to_owned()).unwrap_or_default();
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(centred_labels(ds.len()))
                .y_labels(centred_labels(ms.len()))
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(plot_error)?;
            for (mi, m) in ms.iter().enumerate() {
                let row = (ms.len() - 1 - mi) as f64;
                for (di, d) in ds.iter().enumerate() {
                    let col = di as f64;
                    let value = results.unit(m, d, *strategy).and_then(|u| u.score(metric)).map(|b| b.estimate.point);
                    let v = value.unwrap_or(f64::NAN);
                    let fill = heat_colour(v);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(col, row), (col + 1.0, row + 1.0)],
                            fill.filled(),
                        )))
                        .map_err(plot_error)?;
                    let text = if v.is_nan() { "n/a".to_owned() } else { format!("{v:.3}") };
                    let ink = if v.is_nan() || v > 0.55 { BLACK } else { WHITE };
                    let style = ("sans-serif", 15).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                    chart
                        .draw_series(std::iter::once(Text::new(text, (col + 0.5, row + 0.5), style)))
                        .map_err(plot_error)?;
                }
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The forest plot of the RQ gaps as SVG text.
pub fn forest_svg(results: &Results) -> Result<String, RunError> {
    let gaps = &results.gaps;
    let label = primaries(results).into_iter().map(metric_label).collect::<Vec<_>>().join(" / ");
    let names: Vec<String> = gaps
        .iter()
        .map(|g| format!("{} {} {} ({})", g.rq.as_str(), g.family, g.dataset, metric_label(&g.metric)))
        .collect();
    let label_w = 30 + 8 * names.iter().map(String::len).max().unwrap_or(10) as u32;
    let size = (label_w + 560, 130 + 36 * gaps.len().max(1) as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let title = format!("RQ gaps: best generalist - best specialist ({label}), 95% CI");
        if gaps.is_empty() {
            let root = root.titled(&title, ("sans-serif", 18)).map_err(plot_error)?;
            root.draw(&Text::new("no RQ gaps in these results", (20, 30), ("sans-serif", 15))).map_err(plot_error)?;
            root.present().map_err(plot_error)?;
        } else {
            draw_forest(&root, gaps, &names, &title, &label, label_w)?;
        }
    }
    Ok(svg)
}

/// Draws the forest plot's chart on `root`.
fn draw_forest<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    gaps: &[Gap],
    names: &[String],
    title: &str,
    label: &str,
    label_w: u32,
) -> Result<(), RunError> {
    {
        let lo = gaps
            .iter()
            .flat_map(|g| [g.estimate.lo, g.estimate.point])
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::min);
        let hi = gaps
            .iter()
            .flat_map(|g| [g.estimate.hi, g.estimate.point])
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let pad = ((hi - lo) * 0.08).max(0.02);
        let n = gaps.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(label_w)
            .build_cartesian_2d((lo - pad)..(hi + pad), centred_axis(gaps.len()))
            .map_err(plot_error)?;
        // The first gap on top.
        let y_fmt =
            |v: &f64| centre_index(*v, names.len()).map(|i| names[names.len() - 1 - i].clone()).unwrap_or_default();
        let x_fmt = |v: &f64| format!("{:.2}", if v.abs() < 1e-12 { 0.0 } else { *v });
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(centred_labels(gaps.len()))
            .y_label_formatter(&y_fmt)
            .x_label_formatter(&x_fmt)
            .x_desc(format!("generalist - specialist ({label})"))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(plot_error)?;
        let zero = RGBColor(90, 90, 90);
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (0.0, n)], zero.stroke_width(2))))
            .map_err(plot_error)?;
        for (i, g) in gaps.iter().enumerate() {
            let row = || n - 0.5 - i as f64;
            let colour = match g.rq {
                Rq::Rq1 => RGBColor(31, 119, 180),
                Rq::Rq2 => RGBColor(255, 127, 14),
                Rq::Rq3 => RGBColor(44, 160, 44),
            };
            let e = &g.estimate;
            if e.lo.is_finite() && e.hi.is_finite() {
                let whisker = colour.stroke_width(2);
                chart
                    .draw_series(std::iter::once(PathElement::new(vec![(e.lo, row()), (e.hi, row())], whisker)))
                    .map_err(plot_error)?;
                for end in [e.lo, e.hi] {
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((end, row())) + PathElement::new(vec![(0, -7), (0, 7)], whisker),
                        ))
                        .map_err(plot_error)?;
                }
            }
            if e.point.is_finite() {
                chart
                    .draw_series(std::iter::once(Circle::new((e.point, row()), 5, colour.filled())))
                    .map_err(plot_error)?;
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(())
}

/// Writes `report.md`, the heatmap of each primary score and the forest plot into `dir`.
pub fn write(dir: &Path, results: &Results) -> Result<(), RunError> {
    write_file(&dir.join(REPORT_MD), &markdown(results)?)?;
    for metric in primaries(results) {
        write_file(&dir.join(heatmap_file(metric)), &heatmap_svg(results, metric)?)?;
    }
    write_file(&dir.join(FOREST_SVG), &forest_svg(results)?)
}
