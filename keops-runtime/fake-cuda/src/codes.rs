//! `CUresult` codes (the CUDA driver's numeric values) and their names and descriptions
//! as `cuGetErrorName` / `cuGetErrorString` return them.

use std::ffi::CStr;

/// No error.
pub const CUDA_SUCCESS: u32 = 0;
/// An argument is out of range or a pointer is invalid.
pub const CUDA_ERROR_INVALID_VALUE: u32 = 1;
/// Not enough device memory for an allocation.
pub const CUDA_ERROR_OUT_OF_MEMORY: u32 = 2;
/// `cuInit` was not called (or failed).
pub const CUDA_ERROR_NOT_INITIALIZED: u32 = 3;
/// No device (`KEOPS_FAKE_CUDA_DEVICES=0`).
pub const CUDA_ERROR_NO_DEVICE: u32 = 100;
/// A device ordinal out of range.
pub const CUDA_ERROR_INVALID_DEVICE: u32 = 101;
/// A module image that is not PTX text.
pub const CUDA_ERROR_INVALID_IMAGE: u32 = 200;
/// No current context, or a context that is not (or no longer) valid.
pub const CUDA_ERROR_INVALID_CONTEXT: u32 = 201;
/// The PTX JIT compilation failed.
pub const CUDA_ERROR_INVALID_PTX: u32 = 218;
/// A handle (module, function, stream, event) that is unknown, destroyed, or of
/// another context.
pub const CUDA_ERROR_INVALID_HANDLE: u32 = 400;
/// A named symbol (kernel) is not in the module.
pub const CUDA_ERROR_NOT_FOUND: u32 = 500;
/// A kernel accessed memory outside the allocations of its context (sticky).
pub const CUDA_ERROR_ILLEGAL_ADDRESS: u32 = 700;
/// A kernel executed an instruction with no defined result (sticky).
pub const CUDA_ERROR_ILLEGAL_INSTRUCTION: u32 = 715;
/// A kernel accessed memory at an address not aligned to the access's size (sticky).
pub const CUDA_ERROR_MISALIGNED_ADDRESS: u32 = 716;
/// A kernel failed for another reason (sticky).
pub const CUDA_ERROR_LAUNCH_FAILED: u32 = 719;
/// An internal error of the model (a panic caught at the API boundary).
pub const CUDA_ERROR_UNKNOWN: u32 = 999;

/// (code, name, description) of every code the model returns; the descriptions are
/// the driver's.
const TABLE: &[(u32, &CStr, &CStr)] = &[
    (CUDA_SUCCESS, c"CUDA_SUCCESS", c"no error"),
    (
        CUDA_ERROR_INVALID_VALUE,
        c"CUDA_ERROR_INVALID_VALUE",
        c"invalid argument",
    ),
    (
        CUDA_ERROR_OUT_OF_MEMORY,
        c"CUDA_ERROR_OUT_OF_MEMORY",
        c"out of memory",
    ),
    (
        CUDA_ERROR_NOT_INITIALIZED,
        c"CUDA_ERROR_NOT_INITIALIZED",
        c"initialization error",
    ),
    (
        CUDA_ERROR_NO_DEVICE,
        c"CUDA_ERROR_NO_DEVICE",
        c"no CUDA-capable device is detected",
    ),
    (
        CUDA_ERROR_INVALID_DEVICE,
        c"CUDA_ERROR_INVALID_DEVICE",
        c"invalid device ordinal",
    ),
    (
        CUDA_ERROR_INVALID_IMAGE,
        c"CUDA_ERROR_INVALID_IMAGE",
        c"device kernel image is invalid",
    ),
    (
        CUDA_ERROR_INVALID_CONTEXT,
        c"CUDA_ERROR_INVALID_CONTEXT",
        c"invalid device context",
    ),
    (
        CUDA_ERROR_INVALID_PTX,
        c"CUDA_ERROR_INVALID_PTX",
        c"a PTX JIT compilation failed",
    ),
    (
        CUDA_ERROR_INVALID_HANDLE,
        c"CUDA_ERROR_INVALID_HANDLE",
        c"invalid resource handle",
    ),
    (
        CUDA_ERROR_NOT_FOUND,
        c"CUDA_ERROR_NOT_FOUND",
        c"named symbol not found",
    ),
    (
        CUDA_ERROR_ILLEGAL_ADDRESS,
        c"CUDA_ERROR_ILLEGAL_ADDRESS",
        c"an illegal memory access was encountered",
    ),
    (
        CUDA_ERROR_ILLEGAL_INSTRUCTION,
        c"CUDA_ERROR_ILLEGAL_INSTRUCTION",
        c"an illegal instruction was encountered",
    ),
    (
        CUDA_ERROR_MISALIGNED_ADDRESS,
        c"CUDA_ERROR_MISALIGNED_ADDRESS",
        c"misaligned address",
    ),
    (
        CUDA_ERROR_LAUNCH_FAILED,
        c"CUDA_ERROR_LAUNCH_FAILED",
        c"unspecified launch failure",
    ),
    (CUDA_ERROR_UNKNOWN, c"CUDA_ERROR_UNKNOWN", c"unknown error"),
];

/// The `CUDA_ERROR_...` name of `code`, if the model knows it.
pub fn name(code: u32) -> Option<&'static CStr> {
    TABLE.iter().find(|e| e.0 == code).map(|e| e.1)
}

/// The driver's description of `code`, if the model knows it.
pub fn description(code: u32) -> Option<&'static CStr> {
    TABLE.iter().find(|e| e.0 == code).map(|e| e.2)
}
