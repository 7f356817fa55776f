//! Shards for clusters: each unit (model × dataset × strategy) of a run is a piece of work that
//! existing schedulers (Slurm job arrays, Kubernetes Indexed Jobs) can run. `mvb run --shard
//! i/n` runs the units whose position in the run's plan is `i` modulo `n` into its own folder;
//! [`merge`] checks that every shard ran the same configuration with the same inputs
//! (provenance) and that every planned unit is present exactly once, and writes the
//! predictions (and verdicts) of one unsharded run, from which the same `results.json` follows.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::RunError;
use super::judging::{JUDGEMENTS_FILE, Judgements};
use super::predictions::{self, PREDICTIONS_FILE, RunHeader, Unit, UnitKey};
use super::{BootstrapOverride, Kinds, Progress, Results, finish, unit_key};
use crate::plugin::PluginHost;

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    /// `i/n` with `0 <= i < n`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("shard `{s}`: expected I/N with 0 <= I < N (such as 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The shard a scheduler gives this process: Slurm job arrays (`SLURM_ARRAY_TASK_ID` minus
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`), or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, of `MVB_SHARDS`, which the manifest sets to its completions).
    pub fn from_env() -> Result<Option<Shard>, String> {
        let var = |k: &str| std::env::var(k).ok();
        let num = |k: &str, v: String| v.trim().parse::<usize>().map_err(|_| format!("{k}={v} is not a number"));
        let (index, count) =
            if let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
                let min = var("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |m| num("SLURM_ARRAY_TASK_MIN", m))?;
                let id = num("SLURM_ARRAY_TASK_ID", id)?;
                (
                    id.checked_sub(min).ok_or("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?,
                    num("SLURM_ARRAY_TASK_COUNT", count)?,
                )
            } else if let Some(id) = var("JOB_COMPLETION_INDEX") {
                let count = var("MVB_SHARDS")
                    .ok_or("JOB_COMPLETION_INDEX is set but MVB_SHARDS (the job's completions) is not")?;
                (num("JOB_COMPLETION_INDEX", id)?, num("MVB_SHARDS", count)?)
            } else {
                return Ok(None);
            };
        format!("{index}/{count}").parse().map(Some)
    }

    /// Whether the unit at `position` of the plan is this shard's.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// The default folder of this shard inside the run's output folder.
    pub fn folder(&self, out: &Path) -> PathBuf {
        out.join(format!("shard-{}-of-{}", self.index, self.count))
    }
}

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
