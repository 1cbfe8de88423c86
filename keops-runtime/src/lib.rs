//! keops-rs: runtime (in progress).
