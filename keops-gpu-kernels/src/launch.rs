//! Launch configuration: block size, tile rows, shared memory, and the choice between the
//! 1D and 2D schemes, from the device's properties. Used by the GPU runtime and by the
//! SIMT interpreter's tests alike, so that the configurations tested are those run.

/// What a device offers to a launch.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeviceLimits {
    /// Streaming multiprocessors.
    pub multiprocessors: u64,
    /// Most threads per block.
    pub max_block: u64,
    /// Shared memory per block without opting in (48 KiB on every device since sm_20).
    pub shared_default: u64,
    /// Shared memory per block with the opt-in attribute (227 KiB on H100).
    pub shared_optin: u64,
}

impl DeviceLimits {
    /// An H100 SXM (132 SMs, 227 KiB of shared memory per block with opt-in).
    pub const H100: DeviceLimits = DeviceLimits {
        multiprocessors: 132,
        max_block: 1024,
        shared_default: 48 * 1024,
        shared_optin: 227 * 1024,
    };
}

/// How the reduced index is split.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// One block per `block` output rows, each walking the whole reduced index.
    OneD,
    /// Blocks along y each reduce `slice` rows of the reduced index, into `slices`
    /// partial accumulators merged by a second kernel.
    TwoD {
        /// Number of partial accumulators per row.
        slices: u64,
        /// Rows of the reduced index per slice.
        slice: u64,
    },
}

/// Choices a caller (or a test) may force.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Threads per block (default [`DEFAULT_BLOCK`]).
    pub block: Option<u64>,
    /// Most rows per tile (default: the block size, less if shared memory is short).
    pub tile_rows: Option<u64>,
    /// `Some(1)` forces the 1D scheme, `Some(s)` the 2D scheme with `s` slices.
    pub slices: Option<u64>,
}

/// Default threads per block.
pub const DEFAULT_BLOCK: u64 = 256;

/// Blocks per multiprocessor that the 1D scheme must reach before the 2D scheme is not
/// worth its merge.
const BLOCKS_PER_SM: u64 = 2;

/// A launch configuration for one chunk's kernels.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LaunchPlan {
    /// Threads per block.
    pub block: u64,
    /// Blocks along x (output rows / block, rounded up).
    pub grid_x: u64,
    /// Rows per tile.
    pub tile_rows: u64,
    /// Dynamic shared memory per block of the reduction kernel.
    pub shared_bytes: u64,
    /// 1D or 2D.
    pub scheme: Scheme,
}

/// Why a chunk cannot be launched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// One staged row needs more shared memory than a block has.
    #[error(
        "one row of the reduced variables takes {row_bytes} bytes of shared memory, more than the {available} bytes a block can have; reduce the dimension of the variables indexed by the reduced index"
    )]
    RowTooWide {
        /// Bytes of one staged row.
        row_bytes: u64,
        /// Shared memory available to a block.
        available: u64,
    },
    /// A forced option is out of range.
    #[error("invalid launch option: {0}")]
    Option(String),
}

/// The launch of a chunk whose staged tile rows take `shared_per_row` bytes, for
/// `n_outer` output rows reduced over `n_inner` rows.
pub fn plan(
    shared_per_row: u64,
    n_outer: u64,
    n_inner: u64,
    dev: &DeviceLimits,
    opts: &PlanOptions,
) -> Result<LaunchPlan, PlanError> {
    let block = opts.block.unwrap_or(DEFAULT_BLOCK.min(dev.max_block));
    if block == 0 || block > dev.max_block {
        return Err(PlanError::Option(format!(
            "block of {block} threads (1 to {})",
            dev.max_block
        )));
    }
    let row_bytes = shared_per_row;
    let max_rows = opts.tile_rows.unwrap_or(block).clamp(1, block);
    // Tiles at the default shared memory size when they fit (no opt-in needed, more
    // blocks per multiprocessor), else as many rows as the opt-in size allows.
    let tile_rows = if row_bytes == 0 || row_bytes * max_rows <= dev.shared_default {
        max_rows
    } else {
        (dev.shared_optin.max(dev.shared_default) / row_bytes).min(max_rows)
    };
    if tile_rows == 0 {
        return Err(PlanError::RowTooWide {
            row_bytes,
            available: dev.shared_optin.max(dev.shared_default),
        });
    }
    let grid_x = n_outer.div_ceil(block);
    let scheme = match opts.slices {
        Some(0) => return Err(PlanError::Option("0 slices".into())),
        Some(1) => Scheme::OneD,
        Some(s) => two_d(n_inner, s),
        None => {
            let target = dev.multiprocessors * BLOCKS_PER_SM;
            let max_slices = n_inner.div_ceil(tile_rows * 4);
            let slices = target.div_ceil(grid_x.max(1)).min(max_slices);
            if grid_x >= target || slices < 2 {
                Scheme::OneD
            } else {
                two_d(n_inner, slices)
            }
        }
    };
    Ok(LaunchPlan {
        block,
        grid_x,
        tile_rows,
        shared_bytes: tile_rows * row_bytes,
        scheme,
    })
}

/// The 2D scheme with at most `slices` non-empty slices.
fn two_d(n_inner: u64, slices: u64) -> Scheme {
    let slice = n_inner.div_ceil(slices).max(1);
    Scheme::TwoD {
        slices: n_inner.div_ceil(slice).max(1),
        slice,
    }
}
