//! keops-rs: gpu-kernels (in progress).
