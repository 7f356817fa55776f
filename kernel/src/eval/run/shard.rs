//! Shards for clusters: each unit (model × dataset × strategy) of a run is a piece of work that
//! existing schedulers (Slurm job arrays, Kubernetes Indexed Jobs) can run. `mvb run --shard
//! i/n` runs the units whose position in the run's plan is `i` modulo `n` into its own folder;
//! [`super::merge`] joins the folders into one run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
