//! Host bindings generated from `wit/` for the three worlds. The shared `types` and `host`
//! interfaces are generated once (with the `dataset` world) and reused by the others.

#![allow(missing_docs, missing_debug_implementations, unused_qualifications, clippy::all)]

/// The `dataset` world.
pub mod dataset {
    wasmtime::component::bindgen!({ world: "dataset", path: "wit" });
}

/// The `metric` world.
pub mod metric {
    wasmtime::component::bindgen!({
        world: "metric",
        path: "wit",
        with: {
            "mvb:plugin/types": super::dataset::mvb::plugin::types,
            "mvb:plugin/host": super::dataset::mvb::plugin::host,
        },
    });
}

/// The `judge` world.
pub mod judge {
    wasmtime::component::bindgen!({
        world: "judge",
        path: "wit",
        with: {
            "mvb:plugin/types": super::dataset::mvb::plugin::types,
            "mvb:plugin/host": super::dataset::mvb::plugin::host,
        },
    });
}

pub use dataset::mvb::plugin::{host, types};
