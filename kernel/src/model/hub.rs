//! Resolving a model argument to a local folder: a path, or a Hugging Face id found in the
//! local cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), laid
//! out as `models--ORG--NAME/snapshots/REV/` with `refs/main` naming the revision
//! (<https://huggingface.co/docs/huggingface_hub/guides/manage-cache>). Never the network.

use std::path::{Path, PathBuf};

use super::ModelError;

/// The folder holding `spec`'s files.
pub fn resolve(spec: &str) -> Result<PathBuf, ModelError> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_owned());
    }
    let looks_like_id = spec.split('/').count() == 2 && !spec.starts_with('.') && !spec.starts_with('/');
    let Some(cache) = cache_root().filter(|_| looks_like_id) else {
        return Err(ModelError::NotFound { spec: spec.into(), reason: "no such folder".into() });
    };
    let repo = cache.join(format!("models--{}", spec.replace('/', "--")));
    let not_cached = |why: &str| ModelError::NotFound {
        spec: spec.into(),
        reason: format!(
            "not a folder, and {why} in the local Hugging Face cache {} (mvb never downloads)",
            cache.display()
        ),
    };
    if !repo.is_dir() {
        return Err(not_cached("not"));
    }
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
        let dir = snapshots.join(rev.trim());
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    // No `refs/main` (a cache filled by hand): take the only, or the newest, snapshot.
    let newest = std::fs::read_dir(&snapshots)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    newest.map(|e| e.path()).ok_or_else(|| not_cached("no snapshot"))
}

fn cache_root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(home).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}
