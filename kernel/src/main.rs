//! The `mvb` command line. Every user error ends as one line on stderr and a non-zero exit.

mod cli;

use std::process::ExitCode;

// Forward passes allocate and free activations of several MB per layer; the system allocator
// hands such blocks back to the kernel each time (and page-faults them in again), mimalloc
// keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of contexts, outermost first, without a backtrace.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
