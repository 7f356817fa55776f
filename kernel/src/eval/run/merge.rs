//! Merging the folders of a sharded run (`mvb merge`): checks that every shard ran the same
//! configuration with the same inputs (provenance) and that every planned unit is present exactly
//! once, and writes the predictions (and verdicts) of one unsharded run, from which the same
//! `results.json` follows.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::error::RunError;
use super::judging::{JUDGEMENTS_FILE, Judgements};
use super::predictions::{self, PREDICTIONS_FILE, RunHeader, Unit, UnitKey};
use super::{BootstrapOverride, Kinds, Progress, Results, finish, unit_key};
use crate::plugin::PluginHost;

/// Merges the shard folders `dirs` into `out` (which must not hold predictions yet) and computes
/// results, report and figures there, as [`super::report`] does.
pub fn merge(
    host: &PluginHost,
    out: &Path,
    dirs: &[PathBuf],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Results, Vec<String>), RunError> {
    let target = out.join(PREDICTIONS_FILE);
    if target.exists() {
        return Err(RunError::Usage(format!("{} exists: merge into an empty folder", target.display())));
    }
    let (header, units) = gather(dirs)?;
    let kinds = Kinds::of(host, &header.config)?;
    let mut by_key: HashMap<UnitKey, Unit> = units.into_iter().map(|u| (u.key.clone(), u)).collect();
    let mut ordered = Vec::new();
    let mut missing = Vec::new();
    for (mi, di, s) in kinds.units(&header.config) {
        let key = unit_key(&header.config.models[mi], &header.config.datasets[di], s);
        match by_key.remove(&key) {
            Some(u) => ordered.push(u),
            None => missing.push(key.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(RunError::Usage(format!("cannot merge: units missing from every shard: {}", missing.join(", "))));
    }
    if let Some(extra) = by_key.keys().next() {
        return Err(RunError::Usage(format!("cannot merge: unit {extra} is not one of the configuration's")));
    }
    std::fs::create_dir_all(out).map_err(|e| RunError::io(out, e))?;
    merge_judgements(out, dirs)?;
    let mut writer = predictions::Writer::create(&target)?;
    writer.header(&header)?;
    for u in &ordered {
        writer.unit(u)?;
    }
    drop(writer);
    finish(host, out, BootstrapOverride::default(), progress)
}

/// The shards' common header (their shard numbers removed) and all their complete units, each
/// unit present in exactly one shard.
fn gather(dirs: &[PathBuf]) -> Result<(RunHeader, Vec<Unit>), RunError> {
    let mut common: Option<(RunHeader, &Path)> = None;
    let mut seen: HashMap<UnitKey, &Path> = HashMap::new();
    let mut units = Vec::new();
    for dir in dirs {
        let contents = predictions::read(&dir.join(PREDICTIONS_FILE))?;
        let mut header = contents
            .last_header()
            .cloned()
            .ok_or_else(|| RunError::Usage(format!("{}: the predictions file has no run header", dir.display())))?;
        header.shard = None;
        match &common {
            None => common = Some((header, dir)),
            Some((h, first)) if *h != header => {
                let what =
                    if h.config != header.config { "configuration" } else { "inputs (provenance) or mvb version" };
                return Err(RunError::Usage(format!(
                    "cannot merge: {} ran another {what} than {}",
                    dir.display(),
                    first.display()
                )));
            }
            Some(_) => {}
        }
        for u in contents.units {
            if let Some(other) = seen.insert(u.key.clone(), dir) {
                return Err(RunError::Usage(format!(
                    "cannot merge: unit {} is in both {} and {}",
                    u.key,
                    other.display(),
                    dir.display()
                )));
            }
            units.push(u);
        }
    }
    let (header, _) = common.ok_or_else(|| RunError::Usage("cannot merge: no shard folders given".into()))?;
    Ok((header, units))
}

/// The union of the shards' verdicts, each case once (one judge: [`Judgements::read`] refuses
/// a mix).
fn merge_judgements(out: &Path, dirs: &[PathBuf]) -> Result<(), RunError> {
    let mut seen = HashSet::new();
    let mut lines = String::new();
    for dir in dirs {
        Judgements::read(dir)?;
        let Ok(text) = std::fs::read_to_string(dir.join(JUDGEMENTS_FILE)) else { continue };
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        for line in complete.lines().filter(|l| !l.trim().is_empty()) {
            let case: super::judging::Judgement = serde_json::from_str(line)
                .map_err(|e| RunError::Usage(format!("{}: {e}", dir.join(JUDGEMENTS_FILE).display())))?;
            if seen.insert(case.case) {
                lines.push_str(line);
                lines.push('\n');
            }
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    let path = out.join(JUDGEMENTS_FILE);
    std::fs::write(&path, lines).map_err(|e| RunError::io(&path, e))?;
    Judgements::read(out).map(drop)
}
