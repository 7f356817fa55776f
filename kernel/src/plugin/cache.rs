//! Compiled components, cached in memory and on disk, keyed by a SHA-256 of the component
//! bytes and of the engine's compatibility hash, so repeated starts skip Cranelift.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The component cache.
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<[u8; 32], Component>>,
}

impl ComponentCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        ComponentCache { dir, memory: Mutex::new(HashMap::new()) }
    }

    /// The compiled component for `bytes`.
    pub(crate) fn get(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let key = key(engine, bytes);
        if let Some(hit) = self.memory.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hit);
        }
        let file = self.dir.as_ref().map(|d| d.join(format!("{}.cwasm", crate::util::hex(&key))));
        let cached = file.as_ref().filter(|f| f.is_file()).and_then(|f| {
            // SAFETY: the file was written by `store` below from `Component::serialize` of the
            // same engine configuration (the key includes the engine's compatibility hash), and
            // lives in mvb's own cache folder. wasmtime still checks its header and rejects
            // files made by another version or configuration; such a file is recompiled.
            unsafe { Component::deserialize_file(engine, f) }.ok()
        });
        let component = match cached {
            Some(c) => c,
            None => {
                let c = Component::new(engine, bytes)?;
                if let Some(file) = &file {
                    store(file, &c);
                }
                c
            }
        };
        if let Ok(mut m) = self.memory.lock() {
            m.insert(key, component.clone());
        }
        Ok(component)
    }
}

/// Writes a compiled component atomically; a failure only costs a recompile next time.
fn store(file: &std::path::Path, component: &Component) {
    let Ok(bytes) = component.serialize() else {
        return;
    };
    let Some(dir) = file.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), unique()));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn key(engine: &Engine, bytes: &[u8]) -> [u8; 32] {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let mut sha = Sha256::new();
    sha.update(compat.finish().to_le_bytes());
    sha.update(bytes);
    sha.finalize().into()
}
