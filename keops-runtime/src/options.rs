//! Options of a kernel call: where it runs (the backend), and how.

use crate::error::{InputError, KeopsError, Result};
use keops_gpu_kernels::launch::PlanOptions;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where kernels run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The GPU when an NVIDIA driver and a device are present, the CPU otherwise.
    #[default]
    Auto,
    /// The CPU kernels.
    Cpu,
    /// The GPU with this index; an error when there is no driver or no such device.
    Gpu(usize),
    /// The GPU kernels run by the SIMT interpreter on the CPU: the same kernels and launch
    /// configurations as on a device, with race, bounds and barrier checks. Thousands of
    /// times slower than the CPU kernels: for tests and debugging on machines without a
    /// GPU.
    Emulated,
}

impl std::str::FromStr for Backend {
    type Err = KeopsError;
    /// `auto`, `cpu`, `gpu` (device 0), `gpu:N`, `emulated`.
    fn from_str(s: &str) -> Result<Backend> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" | "" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "gpu" => Ok(Backend::Gpu(0)),
            "emulated" => Ok(Backend::Emulated),
            _ => s
                .strip_prefix("gpu:")
                .and_then(|n| n.parse().ok())
                .map(Backend::Gpu)
                .ok_or_else(|| {
                    InputError::UnknownBackend {
                        given: s.clone(),
                        variable: None,
                    }
                    .into()
                }),
        }
    }
}

/// The process-wide default backend: `u64::MAX` when not set.
static DEFAULT_BACKEND: AtomicU64 = AtomicU64::new(u64::MAX);

fn encode(b: Backend) -> u64 {
    match b {
        Backend::Auto => 0,
        Backend::Cpu => 1,
        Backend::Emulated => 2,
        Backend::Gpu(i) => 3 + i as u64,
    }
}

fn decode(v: u64) -> Backend {
    match v {
        0 => Backend::Auto,
        1 => Backend::Cpu,
        2 => Backend::Emulated,
        i => Backend::Gpu((i - 3) as usize),
    }
}

/// Sets the backend of calls whose options leave it unset.
pub fn set_default_backend(b: Backend) {
    DEFAULT_BACKEND.store(encode(b), Ordering::Relaxed);
}

/// The backend of calls whose options leave it unset: the one given to
/// [`set_default_backend`], else the environment variable `KEOPS_BACKEND` (`auto`, `cpu`,
/// `gpu`, `gpu:N`, `emulated`), else [`Backend::Auto`].
pub fn default_backend() -> Result<Backend> {
    let v = DEFAULT_BACKEND.load(Ordering::Relaxed);
    if v != u64::MAX {
        return Ok(decode(v));
    }
    match std::env::var("KEOPS_BACKEND") {
        Ok(s) => s.parse().map_err(|e| match e {
            KeopsError::Input(InputError::UnknownBackend { given, .. }) => {
                InputError::UnknownBackend {
                    given,
                    variable: Some("KEOPS_BACKEND".into()),
                }
                .into()
            }
            e => e,
        }),
        Err(_) => Ok(Backend::Auto),
    }
}

/// Tuning of the CPU driver.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CpuOptions {
    /// Bytes of the transposed tile (keep it within the L1 data cache).
    pub tile_bytes: usize,
    /// Maximum output rows per task.
    pub max_block_rows: usize,
    /// Sums (Sum reductions and their gradients) of f32 kernels add the partial sum of
    /// each tile into an f64 accumulator (the default adds it into an f32 one: already a
    /// blocked summation, whose error grows with N / tile rather than N).
    pub f64_accumulation: bool,
}

impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            tile_bytes: 16 * 1024,
            max_block_rows: 128,
            f64_accumulation: false,
        }
    }
}

/// Tuning of the GPU backend (defaults: from the device's properties).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuTuning {
    /// Block size, tile rows, 1D or 2D scheme.
    pub plan: PlanOptions,
    /// Most device memory a call uses, in bytes (default: 80% of the free memory); data
    /// beyond is processed in pieces.
    pub memory_limit: Option<u64>,
}

/// Options of a kernel call.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Where the call runs; `None`: [`default_backend`].
    pub backend: Option<Backend>,
    /// f32 GPU kernels use the approximate exp, log, sin, cos, rsqrt and reciprocal of
    /// the GPU (as pykeops does by default); see `docs/math-accuracy.md` for their error.
    /// No effect on the CPU nor in f64.
    pub fast_math: bool,
    /// Sums (`Sum_i`, `Sum_j`) of f32 data add f32 partial sums of 16 terms into an f64
    /// running sum, on every backend (CPU: 16 terms per vector lane; GPU: every 16 rows
    /// of a tile, and f64 partial sums in the 2D scheme): the rounding error no longer
    /// grows with the number of terms. No effect on other reductions nor in f64.
    pub f64_accumulation: bool,
    /// CPU tuning (its `f64_accumulation` is ignored: see above).
    pub cpu: CpuOptions,
    /// GPU launch tuning.
    pub gpu: GpuTuning,
    /// The number of rows M of the index i. Needed only by kernels with no argument
    /// indexed by i (`keops!(y_j: 3; Sum_i(Exp(-SqNorm2(y_j))))`): without it they take
    /// M = 1, as KeOps does. When an argument is indexed by i, its rows must equal it
    /// ([`InputError::OptionRowCount`] otherwise).
    pub m: Option<usize>,
    /// The number of rows N of the index j: `keops!(x_i: 3; Sum_j(Exp(-SqNorm2(x_i))))`
    /// sums N equal terms (N = 1 when neither this option nor an argument says; see
    /// [`Options::m`]).
    pub n: Option<usize>,
}

impl Options {
    /// Options running on `backend`.
    pub fn on(backend: Backend) -> Options {
        Options {
            backend: Some(backend),
            ..Options::default()
        }
    }

    /// The CPU driver's options.
    pub fn cpu_options(&self) -> CpuOptions {
        CpuOptions {
            f64_accumulation: self.f64_accumulation,
            ..self.cpu
        }
    }

    /// The backend of this call.
    pub fn backend(&self) -> Result<Backend> {
        match self.backend {
            Some(b) => Ok(b),
            None => default_backend(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names() {
        assert_eq!("GPU:2".parse::<Backend>().unwrap(), Backend::Gpu(2));
        assert_eq!(" emulated ".parse::<Backend>().unwrap(), Backend::Emulated);
        let e = "gpu:x".parse::<Backend>().unwrap_err();
        assert!(
            matches!(
                &e,
                KeopsError::Input(InputError::UnknownBackend { given, variable: None })
                    if given == "gpu:x"
            ),
            "{e:?}"
        );
    }
}
