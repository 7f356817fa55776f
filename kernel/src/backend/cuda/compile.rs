//! Run-time compilation of `cuda/*.cu` with NVRTC (<https://docs.nvidia.com/cuda/nvrtc/>). The
//! sources are embedded in the binary; `#include "common.cuh"` is pasted in here, so NVRTC needs
//! no include path and no CUDA headers. Each file is compiled to a CUBIN for the device's exact
//! architecture (`sm_XY`), which also runs NVRTC's PTX assembler over the inline PTX; where this
//! NVRTC does not know the architecture (a GPU newer than the library), to PTX for `compute_80`,
//! which the driver compiles on load.
//!
//! Nothing here needs a GPU: `tests/it/cuda.rs` compiles every file for sm_80 and sm_90 on CI.

use std::ffi::{CStr, CString};

use super::CudaError;

/// The embedded kernel sources: (file name, text).
pub const SOURCES: &[(&str, &str)] = &[
    ("attention.cu", include_str!("../../../../cuda/attention.cu")),
    ("lora.cu", include_str!("../../../../cuda/lora.cu")),
    ("elementwise.cu", include_str!("../../../../cuda/elementwise.cu")),
    ("rope.cu", include_str!("../../../../cuda/rope.cu")),
    ("grad.cu", include_str!("../../../../cuda/grad.cu")),
    ("biased_attention.cu", include_str!("../../../../cuda/biased_attention.cu")),
];

/// The headers `SOURCES` may include.
pub const HEADERS: &[(&str, &str)] = &[("common.cuh", include_str!("../../../../cuda/common.cuh"))];

/// The NVRTC library names tried (cudarc's list for this CUDA version).
pub fn nvrtc_candidates() -> Vec<String> {
    cudarc::get_lib_name_candidates("nvrtc")
}

/// Checks that NVRTC can be loaded, without letting cudarc panic when it cannot.
pub fn nvrtc_available() -> Result<(), CudaError> {
    super::probe_library(
        "NVRTC",
        &nvrtc_candidates(),
        "install the CUDA toolkit or `pip install nvidia-cuda-nvrtc-cu12` and put its lib folder on LD_LIBRARY_PATH",
    )
}

/// NVRTC's version, `(major, minor)`.
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    nvrtc_available()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loadable (checked above); the out-pointers are valid.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }.result().map_err(|e| CudaError::Compile {
        file: "-".into(),
        arch: "-".into(),
        log: format!("{e:?}"),
    })?;
    Ok((major, minor))
}

/// `src` with every `#include "<header>"` of [`HEADERS`] replaced by the header's text.
pub fn expand_includes(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 8192);
    for line in src.lines() {
        let header = line.trim().strip_prefix("#include \"").and_then(|rest| rest.strip_suffix('"'));
        match header.and_then(|h| HEADERS.iter().find(|(name, _)| *name == h)) {
            Some((_, text)) => out.push_str(text),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// What NVRTC produced for one file.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// A CUBIN (for `sm_XY`) or NUL-terminated PTX text (for `compute_XY`).
    pub image: Vec<u8>,
    /// Whether `image` is PTX.
    pub is_ptx: bool,
    /// NVRTC's log (with `verbose`, the assembler's register and spill report).
    pub log: String,
}

/// Compiles one embedded source for `arch` (`sm_90` gives a CUBIN, `compute_80` PTX). `verbose`
/// asks the PTX assembler for its per-kernel register, shared-memory and spill report.
pub fn compile(file: &str, source: &str, arch: &str, verbose: bool) -> Result<Compiled, CudaError> {
    nvrtc_available()?;
    let fail = |log: String| CudaError::Compile { file: file.to_owned(), arch: arch.to_owned(), log };
    let src = CString::new(expand_includes(source)).map_err(|_| fail("the source holds a NUL byte".into()))?;
    let name = CString::new(file).map_err(|_| fail("the file name holds a NUL byte".into()))?;
    let prog = cudarc::nvrtc::result::create_program(&src, Some(&name)).map_err(|e| fail(format!("{e:?}")))?;
    let mut options = vec![format!("--gpu-architecture={arch}"), "-std=c++17".to_owned()];
    if verbose {
        options.push("--ptxas-options=-v".to_owned());
    }
    let is_ptx = arch.starts_with("compute_");
    // SAFETY: `prog` was created above and is destroyed once, below; `src` and `name` outlive it.
    let result = unsafe {
        let compiled = cudarc::nvrtc::result::compile_program(prog, &options);
        let log = cudarc::nvrtc::result::get_program_log(prog)
            .map(|raw| CStr::from_ptr(raw.as_ptr()).to_string_lossy().trim().to_owned())
            .unwrap_or_default();
        match compiled {
            Err(e) => Err(fail(if log.is_empty() { format!("{e:?}") } else { log })),
            Ok(()) if is_ptx => cudarc::nvrtc::result::get_ptx(prog)
                .map(|ptx| Compiled { image: ptx.iter().map(|&c| c as u8).collect(), is_ptx, log })
                .map_err(|e| fail(format!("{e:?}"))),
            Ok(()) => cubin(prog).map(|image| Compiled { image, is_ptx, log }).map_err(|e| fail(format!("{e:?}"))),
        }
    };
    // SAFETY: `prog` is valid and not used after this.
    let _ = unsafe { cudarc::nvrtc::result::destroy_program(prog) };
    result
}

/// # Safety
/// `prog` must be a successfully compiled NVRTC program.
unsafe fn cubin(prog: cudarc::nvrtc::sys::nvrtcProgram) -> Result<Vec<u8>, cudarc::nvrtc::result::NvrtcError> {
    let mut size = 0usize;
    // SAFETY: per the function's contract; the buffer has the size NVRTC asked for.
    unsafe {
        cudarc::nvrtc::sys::nvrtcGetCUBINSize(prog, &mut size).result()?;
        let mut image = vec![0u8; size];
        cudarc::nvrtc::sys::nvrtcGetCUBIN(prog, image.as_mut_ptr().cast()).result()?;
        Ok(image)
    }
}

/// Compiles for a device of compute capability `major.minor`: a CUBIN for `sm_XY`, else (an
/// architecture this NVRTC does not know) PTX for `compute_80`, compiled by the driver on load.
pub fn compile_for_device(file: &str, source: &str, major: i32, minor: i32) -> Result<Compiled, CudaError> {
    let arch = format!("sm_{major}{minor}");
    match compile(file, source, &arch, false) {
        Ok(c) => Ok(c),
        Err(CudaError::Compile { log, .. }) if log.contains("gpu-architecture") || log.contains("arch") => {
            compile(file, source, "compute_80", false)
        }
        Err(e) => Err(e),
    }
}

/// The register, shared-memory and spill lines of a verbose log, one per kernel.
pub fn resource_report(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut kernel = String::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            kernel = rest.split('\'').next().unwrap_or_default().to_owned();
        } else if line.contains("spill stores") {
            out.push(format!("{kernel}: {}", line.trim_start_matches("ptxas").trim_start_matches(['.', ' '])));
        } else if line.contains("Used ")
            && line.contains("registers")
            && let Some(last) = out.last_mut()
        {
            last.push_str(&format!("; {}", line.split("info    : ").nth(1).unwrap_or(line)));
        }
    }
    out
}

/// The kernel names the launch wrappers use, per source file (the compile test checks that each
/// is in the file's CUBIN).
pub fn kernel_names(file: &str) -> Vec<String> {
    const TYPES: [&str; 3] = ["float", "bf16", "f16"];
    let mut names = Vec::new();
    match file {
        "attention.cu" => {
            for t in ["bf16", "f16"] {
                for d in [64, 80, 128] {
                    names.push(format!("attn_fwd_mma_{t}_d{d}"));
                }
            }
            names.extend(TYPES.iter().map(|t| format!("attn_fwd_simt_{t}")));
        }
        "lora.cu" => {
            names.extend(["sgmv_mma_bf16", "sgmv_mma_f16"].map(str::to_owned));
            names.extend(TYPES.iter().map(|t| format!("sgmv_simt_{t}")));
        }
        "elementwise.cu" => {
            for k in [
                "layernorm",
                "bias_act",
                "add",
                "axpy",
                "softmax",
                "im2col",
                "vit_tokens",
                "gather_rows",
                "scatter_rows",
                "rmsnorm",
                "silu_mul",
                "write_positions",
            ] {
                names.extend(TYPES.iter().map(|t| format!("{k}_{t}")));
            }
            for t in ["bf16", "f16"] {
                names.push(format!("cast_float_{t}"));
                names.push(format!("cast_{t}_float"));
            }
            names.push("fill_u32".to_owned());
        }
        "rope.cu" => names.extend(TYPES.iter().map(|t| format!("rope_{t}"))),
        "grad.cu" => {
            for k in ["layernorm_backward", "act_backward", "softmax_backward", "copy_cols", "mul", "sum_batches"] {
                names.extend(TYPES.iter().map(|t| format!("{k}_{t}")));
            }
        }
        "biased_attention.cu" => names.extend(TYPES.iter().map(|t| format!("attn_bias_{t}"))),
        _ => {}
    }
    names
}
