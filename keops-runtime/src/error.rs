//! Errors of the runtime: bad input, formula errors, device errors.

use keops_ir::{Error as IrError, FormulaError};

/// An error from running a kernel.
#[derive(Debug, thiserror::Error)]
pub enum KeopsError {
    /// The arguments do not fit the kernel (row counts, widths, empty arrays, sizes).
    #[error("bad input: {0}")]
    Input(String),
    /// A run-time formula failed to compile.
    #[error("{0}")]
    Formula(#[from] FormulaError),
    /// The compiler rejected something while preparing a kernel.
    #[error("{0}")]
    Compile(#[from] IrError),
    /// Memory for a result or a work buffer could not be allocated.
    #[error("out of host memory: {0}")]
    OutOfMemory(String),
    /// The GPU backend failed (no driver, no device, a driver error with its name).
    #[error("{0}")]
    Gpu(crate::gpu::driver::GpuError),
}

impl KeopsError {
    /// A bad-input error.
    pub fn input(msg: impl Into<String>) -> Self {
        KeopsError::Input(msg.into())
    }
}

/// Results of the runtime.
pub type Result<T, E = KeopsError> = std::result::Result<T, E>;
