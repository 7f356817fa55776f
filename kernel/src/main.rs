//! The `mvb` command line. Every user error ends as one line on stderr and a non-zero exit.

mod cli;

use std::process::ExitCode;

// Forward passes allocate and free activations of several MB per layer; the system allocator
// hands such blocks back to the kernel each time (and page-faults them in again), mimalloc
// keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v3: the 16th `mi_option_e`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Never purge freed memory back to the kernel: a training step or a batched decoding step
    // frees and reallocates the same hundreds of MB of activations, and with the default 10 ms
    // delay each step page-faults them in again (zeroing pages was a fifth of an FT-LoRA step's
    // samples under `perf`). The process's memory stays at its high-water mark instead.
    // SAFETY: a documented option, set before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of contexts, outermost first, without a backtrace.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
