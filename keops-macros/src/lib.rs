//! keops-rs: macros (in progress).
