//! A user's own split: `mvb-split.csv` in the data folder, with the columns `id` (a sample id
//! as the plugin gives it) and `split` (`train`, `validation` or `test`).
//!
//! MedVLMBench drew its own splits for several diagnosis datasets and did not publish them;
//! the plugins use the publisher's official split unless the user supplies one this way
//! (never a random split of their own). With the file, exactly the samples it lists are
//! served, in the plugin's order, in the split it names; a listed id the dataset lacks is an
//! error naming its line.

use std::collections::HashMap;

use crate::csv::Csv;
use crate::{Error, LogLevel, Sample, fs, log, split_named};

/// The split file's name in the data folder (`prefix/` first when the dataset lives in a
/// sub-folder).
pub const FILE: &str = "mvb-split.csv";

/// Re-splits `splits` by `<folder>/mvb-split.csv` when the user supplied one; returns them
/// unchanged otherwise.
pub fn apply(folder: &str, splits: [Vec<Sample>; 3]) -> Result<[Vec<Sample>; 3], Error> {
    let file = fs::join(folder, FILE);
    if !fs::is_file(&file) {
        return Ok(splits);
    }
    let csv = Csv::parse(&file, &fs::read_text(&file)?)?;
    let (id_col, split_col) = (csv.column("id")?, csv.column("split")?);
    let mut wanted: HashMap<&str, (usize, usize)> = HashMap::new();
    for row in csv.rows() {
        let id = row.required(id_col)?;
        let split = split_named(row.get(split_col))
            .ok_or_else(|| row.bad(split_col, format!("`{}` is not train, validation or test", row.get(split_col))))?;
        if let Some((_, first)) = wanted.insert(id, (crate::slot(split), row.line)) {
            return Err(row.bad(id_col, format!("id `{id}` is already listed on line {first}")));
        }
    }
    let mut out: [Vec<Sample>; 3] = Default::default();
    let total: usize = splits.iter().map(Vec::len).sum();
    for sample in splits.into_iter().flatten() {
        if let Some((slot, _)) = wanted.remove(sample.id.as_str()) {
            out[slot].push(sample);
        }
    }
    if let Some((id, (_, line))) = wanted.iter().min_by_key(|(_, (_, line))| *line) {
        return Err(crate::corrupt(format!("`{file}` line {line}, column `id`: the dataset has no sample `{id}`")));
    }
    let kept: usize = out.iter().map(Vec::len).sum();
    log(LogLevel::Info, &format!("`{file}`: {kept} of {total} samples, split as the file says"));
    Ok(out)
}
