//! Errors of the runtime: bad input, formula errors, device errors.

use keops_gpu_kernels::launch::PlanError;
use keops_ir::{Error as IrError, FormulaError};
use std::fmt;

/// An error from running a kernel.
#[derive(Debug, thiserror::Error)]
pub enum KeopsError {
    /// The arguments, output buffers or options do not fit the kernel: [`InputError`] says
    /// what was expected and what was found.
    #[error("bad input: {0}")]
    Input(InputError),
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
    Gpu(GpuError),
}

// Not `#[from]` on the variant: that would also make the input error the `source()` of
// this one, whose message already includes it (error reporters would print it twice).
impl InputError {
    /// The argument the error is about, when a kernel call names it.
    pub fn argument(&self) -> Option<&str> {
        match self {
            InputError::RowCount { argument, .. }
            | InputError::OptionRowCount { argument, .. }
            | InputError::ParameterRows { argument, .. }
            | InputError::Argument { argument, .. } => Some(argument),
            _ => None,
        }
    }

    /// What is wrong, without the argument's name ([`InputError::Argument`] unwrapped).
    pub fn kind(&self) -> &InputError {
        match self {
            InputError::Argument { error, .. } => error.kind(),
            other => other,
        }
    }
}

impl From<InputError> for KeopsError {
    fn from(e: InputError) -> Self {
        KeopsError::Input(e)
    }
}

impl KeopsError {
    /// An error of keops-rs itself (a broken invariant of the runtime, not the caller's
    /// input), reported as a limit of the compiler, its message starting with "internal:".
    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        KeopsError::Compile(IrError::new(
            keops_ir::ErrorKind::Limit,
            format!("internal: {}", msg.into()),
        ))
    }
}

impl From<GpuError> for KeopsError {
    fn from(e: GpuError) -> Self {
        KeopsError::Gpu(e)
    }
}

/// Results of the runtime.
pub type Result<T, E = KeopsError> = std::result::Result<T, E>;

/// An error of the GPU backend, with what the driver said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// `libcuda` could not be loaded: no NVIDIA driver on this machine.
    #[error(
        "no NVIDIA driver: libcuda could not be loaded; install the NVIDIA driver, or run on the CPU (Backend::Cpu or Auto)"
    )]
    NoDriver,
    /// The driver loaded but there is no such device.
    #[error("no GPU with index {index}: the driver reports {count} device(s)")]
    NoDevice {
        /// The index asked for.
        index: usize,
        /// Devices present.
        count: usize,
    },
    /// A driver call failed.
    #[error("CUDA error {name} (code {code}) in {call}: {description}")]
    Driver {
        /// The driver function.
        call: &'static str,
        /// `CUresult` value.
        code: u32,
        /// Its name (`CUDA_ERROR_...`).
        name: String,
        /// The driver's description.
        description: String,
    },
    /// The driver's JIT compiler rejected a generated module (a keops-rs bug).
    #[error("the driver rejected a generated PTX module ({name}); its log:\n{log}")]
    Jit {
        /// The `CUresult` name.
        name: String,
        /// The JIT compiler's error log.
        log: String,
    },
    /// Device memory ran out (the data is split into pieces that fit in the memory free
    /// when the call starts; another process may take it meanwhile).
    #[error("out of GPU memory: {0}")]
    OutOfMemory(String),
    /// A launch configuration beyond the device's limits.
    #[error("impossible launch: {0}")]
    Launch(String),
    /// An earlier error of this device (a kernel fault) destroyed its context: CUDA
    /// cannot use the device again in this process.
    #[error(
        "GPU {index} is unusable until the process restarts: its context was lost after {first}"
    )]
    ContextLost {
        /// The device index.
        index: usize,
        /// The error that lost it.
        first: String,
    },
}

/// What is wrong with the input of a call ([`KeopsError::Input`]): its arguments, output
/// buffers, device arrays or options. Each variant says what was expected and what was
/// found. An error about one argument of a kernel call names it: the row counts of a
/// call's arguments are checked by name ([`InputError::RowCount`]), and what is wrong
/// with one argument's rows (a width, a length, a layout) comes wrapped in
/// [`InputError::Argument`] with its name ([`InputError::argument`] reads the name,
/// [`InputError::kind`] what is wrong). A value converted on its own (a matrix given to
/// [`View`](crate::View) directly, a [`DeviceArray`](crate::DeviceArray) written) is
/// described by its [`Holder`]; the inputs of the drivers are named by position.
///
/// ```
/// use keops_runtime::error::{Axis, Holder, Role};
/// use keops_runtime::{InputError, KeopsError};
///
/// fn explain(e: &KeopsError) -> String {
///     let KeopsError::Input(input) = e else { return e.to_string() };
///     match (input.argument(), input.kind()) {
///         (Some(a), InputError::RowCount { axis: Axis::J, expected, .. }) => {
///             format!("`{a}` should have N = {expected} rows")
///         }
///         (Some(a), InputError::Width { holder: Holder::Matrix, expected, .. }) => {
///             format!("pass `{a}` as a matrix of {expected} columns")
///         }
///         _ => e.to_string(),
///     }
/// }
/// let (holder, role) = (Holder::Matrix, Role::Argument);
/// let width = InputError::Width { holder, role, expected: 3, got: 2 };
/// let e = InputError::Argument { argument: "x".into(), error: Box::new(width) };
/// assert_eq!(explain(&e.into()), "pass `x` as a matrix of 3 columns");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// An argument has another number of rows than an earlier argument indexed by the same
    /// index (`b_j` with 6 rows after `y_j` with 5).
    #[error("`{argument}` has {got} rows, but another variable indexed like it has {expected}")]
    RowCount {
        /// The argument, by the name the kernel declares.
        argument: String,
        /// The index the two arguments share.
        axis: Axis,
        /// The rows of the earlier arguments indexed by `axis`.
        expected: usize,
        /// The argument's rows.
        got: usize,
    },
    /// A parameter (an argument indexed by neither i nor j) with other than one row.
    #[error("`{argument}` is a parameter: it must have one row, found {got}")]
    ParameterRows {
        /// The argument, by the name the kernel declares.
        argument: String,
        /// Its rows.
        got: usize,
    },
    /// An argument has another number of rows than the call's options give its index
    /// ([`Options::m`](crate::Options::m) for i, [`Options::n`](crate::Options::n) for j).
    #[error(
        "`{argument}` has {got} rows, but the options set {} = {option} (Options::{})",
        axis.count_name(),
        axis.count_name().to_ascii_lowercase()
    )]
    OptionRowCount {
        /// The argument, by the name the kernel declares.
        argument: String,
        /// The index the argument is indexed by.
        axis: Axis,
        /// The rows the options give the index.
        option: usize,
        /// The argument's rows.
        got: usize,
    },
    /// Rows of another width than the kernel's (or, for [`Role::Transfer`], than the
    /// caller asked for): a matrix with 2 columns where the kernel needs 3.
    #[error("{}", width_message(*holder, *role, *expected, *got))]
    Width {
        /// What holds the rows.
        holder: Holder,
        /// What is done with them.
        role: Role,
        /// The width needed.
        expected: usize,
        /// The width found.
        got: usize,
    },
    /// A buffer whose number of values is not that of `rows` rows of width `cols` (a
    /// [`Flat`](crate::Flat) argument of 7 values for 2 rows of width 3), or too small for
    /// them with its strides (an output buffer).
    #[error("{}", length_message(*holder, *role, *rows, *cols, *got))]
    Length {
        /// What holds the values.
        holder: Holder,
        /// What is done with them.
        role: Role,
        /// The rows it should hold.
        rows: usize,
        /// Their width.
        cols: usize,
        /// The number of values found.
        got: usize,
    },
    /// A flat array whose width is to be inferred (`View::flat`, `DeviceArray::from_flat`)
    /// cannot be split into `rows` rows of equal width: `values` is not a multiple of
    /// `rows`, or `rows` is 0.
    #[error("{}", whole_rows_message(*values, *rows))]
    NotWholeRows {
        /// The number of values.
        values: usize,
        /// The number of rows asked for.
        rows: usize,
    },
    /// A view ([`View::with_strides`](crate::View::with_strides)) whose shape and strides
    /// reach beyond its slice.
    #[error(
        "a view of {rows} rows of width {cols} with strides ({row_stride}, {col_stride}) reaches beyond its {values} values"
    )]
    Strides {
        /// Rows.
        rows: usize,
        /// Values per row.
        cols: usize,
        /// Distance between rows.
        row_stride: usize,
        /// Distance between columns.
        col_stride: usize,
        /// The slice's length.
        values: usize,
    },
    /// A range of rows ([`View::rows_range`](crate::View::rows_range)) that is not within
    /// the view's rows (`start` or `end` is `usize::MAX` when the range's bound overflows).
    #[error("rows {start}..{end} of a view of {rows} rows")]
    RowRange {
        /// The first row asked for.
        start: usize,
        /// One past the last row asked for.
        end: usize,
        /// The view's rows.
        rows: usize,
    },
    /// `rows` rows of `cols` values are more values than `usize` can count.
    #[error("{rows} rows of {cols} values overflow usize")]
    Overflow {
        /// Rows.
        rows: usize,
        /// Values per row.
        cols: usize,
    },
    /// An ndarray array with a negative stride.
    #[error("{}", layout_message(*role, true))]
    NegativeStrides {
        /// An argument or an output buffer.
        role: Role,
    },
    /// An ndarray array whose elements are not contiguous in memory (a slice with a step).
    #[error("{}", layout_message(*role, false))]
    NotContiguous {
        /// An argument or an output buffer.
        role: Role,
    },
    /// An output buffer (`eval_into`) of another shape than the call's output.
    #[error("the output buffer has {got}, the call writes {expected}")]
    OutputShape {
        /// The output's shape.
        expected: Shape,
        /// The buffer's shape.
        got: Shape,
    },
    /// An index buffer (`eval_into` of a reduction that selects indices) of another shape
    /// than the call's selected indices.
    #[error(
        "the index buffer has {} rows of {} indices, the call writes {} rows of {}",
        got.rows,
        got.cols,
        expected.rows,
        expected.cols
    )]
    IndexShape {
        /// The shape of the selected indices.
        expected: Shape,
        /// The buffer's shape.
        got: Shape,
    },
    /// A view of part of a [`DeviceArray`](crate::DeviceArray) (or one carrying another
    /// array's device copy) whose current values are on the device only: the call cannot
    /// tell which of them the view shows.
    #[error(
        "a view of part of a DeviceArray (or with another array's device copy) whose values are on the device only: call DeviceArray::sync_host first"
    )]
    StaleView,
    /// An argument of a kernel call whose rows cannot be read (`error` says why: a width,
    /// a length, a layout): the kernel's methods name the argument this way.
    #[error("`{argument}`: {error}")]
    Argument {
        /// The argument, by the name the kernel declares.
        argument: String,
        /// What is wrong with it.
        error: Box<InputError>,
    },
    /// A driver was given another number of inputs in one group than its kernel reads.
    #[error("the kernel reads {expected} {}, {got} were given", group.plural())]
    InputCount {
        /// The group of inputs.
        group: InputGroup,
        /// The inputs the kernel reads.
        expected: usize,
        /// The inputs given.
        got: usize,
    },
    /// A driver input of another width than its kernel reads.
    #[error("{} has width {got}, the kernel needs {expected}", group.input(*index))]
    InputWidth {
        /// The group of inputs.
        group: InputGroup,
        /// The input's position in its group, from 0.
        index: usize,
        /// The width the kernel reads.
        expected: usize,
        /// The input's width.
        got: usize,
    },
    /// A driver input of another number of rows than its index has.
    #[error("{}", input_rows_message(*group, *index, *expected, *got))]
    InputRows {
        /// The group of inputs.
        group: InputGroup,
        /// The input's position in its group, from 0.
        index: usize,
        /// The rows of its index (1 for a parameter).
        expected: usize,
        /// The input's rows.
        got: usize,
    },
    /// The selections given to a gather (the indices a Min, Max or KMin reduction
    /// selected) have another shape than it reads: a row per row of the owner index, and
    /// `K * D` indices per row.
    #[error(
        "the selections have {} rows of {} indices, the gather expects {} of {}",
        got.rows,
        got.cols,
        expected.rows,
        expected.cols
    )]
    Selections {
        /// The shape the gather reads.
        expected: Shape,
        /// The selections' shape.
        got: Shape,
    },
    /// The selections given to a CPU gather have a number of indices per row that is not
    /// a whole number of slots of its formula's width (`K * D` indices for a width `D`).
    #[error(
        "the selections have {width} indices per row, not a whole number of slots of {slot_width}"
    )]
    SelectionSlots {
        /// Indices per row.
        width: usize,
        /// The gather's slot width `D`.
        slot_width: usize,
    },
    /// A selected index that is not a row of the index it selects from.
    #[error("a selected index {index} is beyond the {rows} rows it selects from")]
    SelectedIndex {
        /// The index.
        index: u64,
        /// The rows it selects from.
        rows: usize,
    },
    /// The GPU launch cannot be planned: a forced launch option out of range
    /// (`Options::gpu.plan`), or a staged row wider than a block's shared memory.
    #[error(transparent)]
    LaunchPlan(#[from] PlanError),
    /// A backend name that is not one of `auto`, `cpu`, `gpu`, `gpu:N`, `emulated`.
    #[error("{}", backend_message(given, variable.as_deref()))]
    UnknownBackend {
        /// The name given.
        given: String,
        /// The environment variable it was read from (`KEOPS_BACKEND`), if any.
        variable: Option<String>,
    },
}

/// The index that selects rows: i (whose row count is M) or j (N).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Axis {
    /// The index i (rows of `x_i` variables; M rows).
    I,
    /// The index j (rows of `y_j` variables; N rows).
    J,
}

impl Axis {
    /// `M` or `N`: how the documentation names the number of rows of this index.
    pub fn count_name(self) -> &'static str {
        match self {
            Axis::I => "M",
            Axis::J => "N",
        }
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Axis::I => "i",
            Axis::J => "j",
        })
    }
}

/// What holds rows that an [`InputError`] is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Holder {
    /// Host memory given as rows: `&[[T; D]]`, `Vec<[T; D]>`, a [`Flat`](crate::Flat)
    /// slice, a [`View`](crate::View), an output slice or vector.
    Rows,
    /// A nalgebra matrix (or column-major memory).
    Matrix,
    /// An ndarray array.
    Array,
    /// A [`DeviceArray`](crate::DeviceArray).
    DeviceArray,
}

/// What a call does with the rows an [`InputError`] is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A kernel reads them: an argument.
    Argument,
    /// A kernel writes them: an output buffer (`eval_into`).
    Output,
    /// The caller copies values into or out of a device array (`DeviceArray::write`,
    /// `DeviceArray::to_rows`).
    Transfer,
}

/// Rows and width of an array.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of rows.
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
}

impl Shape {
    /// `rows` rows of `cols` values.
    pub fn new(rows: usize, cols: usize) -> Self {
        Shape { rows, cols }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows of width {}", self.rows, self.cols)
    }
}

/// A group of the inputs that a driver takes, in which [`InputError::InputWidth`] and
/// [`InputError::InputRows`] give an input's position. The kernels `keops!` generates
/// check their arguments (by name) before the drivers see them: errors of these groups
/// come from direct uses of the drivers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputGroup {
    /// Variables indexed like a reduction's output rows (`cpu::ReduceArgs::outer`).
    Outer,
    /// Variables indexed by a reduction's reduced index (`cpu::ReduceArgs::inner`).
    Inner,
    /// Parameters (`ReduceArgs::params`, `GatherArgs::params`).
    Params,
    /// Variables indexed like the rows that selected, in a gather (`GatherArgs::owner`).
    Owner,
    /// Variables indexed by the selected index, in a gather (`GatherArgs::other`).
    Other,
    /// The inputs of a GPU step, in the order its module reads them
    /// (`gpu::StepCall::inputs`, `gpu::GatherCall::inputs`).
    Step,
    /// The cotangent sources of a gather's slot weights (`gpu::GatherCall::weights`).
    Cotangents,
}

impl InputGroup {
    /// The group's inputs, in the plural: "output-indexed variables".
    fn plural(self) -> &'static str {
        match self {
            InputGroup::Outer => "output-indexed variables",
            InputGroup::Inner => "reduced-index variables",
            InputGroup::Params => "parameters",
            InputGroup::Owner => "selecting-index variables",
            InputGroup::Other => "selected-index variables",
            InputGroup::Step => "inputs",
            InputGroup::Cotangents => "cotangents",
        }
    }

    /// Input `index` of the group: "output-indexed variable 2".
    fn input(self, index: usize) -> String {
        match self {
            InputGroup::Outer => format!("output-indexed variable {index}"),
            InputGroup::Inner => format!("reduced-index variable {index}"),
            InputGroup::Params => format!("parameter {index}"),
            InputGroup::Owner => format!("selecting-index variable {index}"),
            InputGroup::Other => format!("selected-index variable {index}"),
            InputGroup::Step => format!("kernel input {index}"),
            InputGroup::Cotangents => format!("cotangent {index}"),
        }
    }
}

/// How a message names rows held by `holder` in `role`.
fn holder_name(holder: Holder, role: Role) -> &'static str {
    match (role, holder) {
        (Role::Output, Holder::Rows) => "an output buffer",
        (Role::Output, Holder::Matrix) => "an output matrix",
        (Role::Output, Holder::Array) => "an output array",
        (_, Holder::Rows) => "an argument",
        (_, Holder::Matrix) => "a matrix",
        (_, Holder::Array) => "an array",
        (_, Holder::DeviceArray) => "a device array",
    }
}

fn width_message(holder: Holder, role: Role, expected: usize, got: usize) -> String {
    let columns = matches!(holder, Holder::Matrix | Holder::Array);
    let found = if columns {
        format!("with {got} columns")
    } else {
        format!("of width {got}")
    };
    let needed = match (role, holder) {
        (Role::Argument, _) => format!("where the kernel needs {expected}"),
        (Role::Output, Holder::DeviceArray) => format!("receives an output of width {expected}"),
        (Role::Output, _) => format!("where the kernel writes {expected}"),
        (Role::Transfer, _) => format!("read as rows of {expected}"),
    };
    let hint = if columns { " (one point per row)" } else { "" };
    format!("{} {found} {needed}{hint}", holder_name(holder, role))
}

fn length_message(holder: Holder, role: Role, rows: usize, cols: usize, got: usize) -> String {
    let name = match (role, holder) {
        (Role::Transfer, _) => {
            let name = holder_name(holder, role);
            return format!("{got} values written into {name} of {rows} rows of width {cols}");
        }
        (Role::Argument, Holder::Rows) => "a flat argument",
        (Role::Argument, Holder::Matrix) => "a column-major array",
        _ => holder_name(holder, role),
    };
    format!("{name} of {got} values does not hold {rows} rows of width {cols}")
}

fn whole_rows_message(values: usize, rows: usize) -> String {
    if rows == 0 {
        "an array with 0 rows has no width; pass at least one row".into()
    } else {
        format!("a flat array of {values} values cannot be split into {rows} rows of equal width")
    }
}

fn layout_message(role: Role, negative_strides: bool) -> &'static str {
    match (role, negative_strides) {
        (Role::Output, true) => {
            "an output array with negative strides: pass a standard-layout array"
        }
        (Role::Output, false) => "a non-contiguous output array: pass a standard-layout array",
        (_, true) => {
            "an array with negative strides: make it contiguous first (e.g. `.as_standard_layout()`)"
        }
        (_, false) => {
            "a non-contiguous array: make it contiguous first (e.g. `.as_standard_layout()`)"
        }
    }
}

fn input_rows_message(group: InputGroup, index: usize, expected: usize, got: usize) -> String {
    match group {
        InputGroup::Params => format!("parameter {index} must have one row, found {got}"),
        _ => format!("{} has {got} rows, expected {expected}", group.input(index)),
    }
}

fn backend_message(given: &str, variable: Option<&str>) -> String {
    let prefix = variable.map(|v| format!("{v}: ")).unwrap_or_default();
    format!("{prefix}unknown backend `{given}`: expected auto, cpu, gpu, gpu:N or emulated")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages are those the runtime printed before input errors had kinds.
    #[test]
    fn messages_say_what_was_expected_and_found() {
        let cases: Vec<(InputError, &str)> = vec![
            (
                InputError::RowCount {
                    argument: "b".into(),
                    axis: Axis::J,
                    expected: 5,
                    got: 6,
                },
                "`b` has 6 rows, but another variable indexed like it has 5",
            ),
            (
                InputError::OptionRowCount {
                    argument: "y".into(),
                    axis: Axis::J,
                    option: 4,
                    got: 5,
                },
                "`y` has 5 rows, but the options set N = 4 (Options::n)",
            ),
            (
                InputError::Strides {
                    rows: 3,
                    cols: 2,
                    row_stride: 4,
                    col_stride: 1,
                    values: 9,
                },
                "a view of 3 rows of width 2 with strides (4, 1) reaches beyond its 9 values",
            ),
            (
                InputError::RowRange {
                    start: 2,
                    end: 5,
                    rows: 4,
                },
                "rows 2..5 of a view of 4 rows",
            ),
            (
                InputError::Length {
                    holder: Holder::Rows,
                    role: Role::Argument,
                    rows: 2,
                    cols: 3,
                    got: 7,
                },
                "a flat argument of 7 values does not hold 2 rows of width 3",
            ),
            (
                InputError::Length {
                    holder: Holder::DeviceArray,
                    role: Role::Transfer,
                    rows: 3,
                    cols: 1,
                    got: 2,
                },
                "2 values written into a device array of 3 rows of width 1",
            ),
            (
                InputError::Width {
                    holder: Holder::Matrix,
                    role: Role::Output,
                    expected: 3,
                    got: 2,
                },
                "an output matrix with 2 columns where the kernel writes 3 (one point per row)",
            ),
            (
                InputError::Width {
                    holder: Holder::DeviceArray,
                    role: Role::Output,
                    expected: 2,
                    got: 3,
                },
                "a device array of width 3 receives an output of width 2",
            ),
            (
                InputError::Width {
                    holder: Holder::Array,
                    role: Role::Argument,
                    expected: 3,
                    got: 2,
                },
                "an array with 2 columns where the kernel needs 3 (one point per row)",
            ),
            (
                InputError::NotWholeRows { values: 5, rows: 0 },
                "an array with 0 rows has no width; pass at least one row",
            ),
            (
                InputError::NotContiguous { role: Role::Output },
                "a non-contiguous output array: pass a standard-layout array",
            ),
            (
                InputError::NegativeStrides {
                    role: Role::Argument,
                },
                "an array with negative strides: make it contiguous first (e.g. `.as_standard_layout()`)",
            ),
            (
                InputError::IndexShape {
                    expected: Shape::new(50, 4),
                    got: Shape::new(49, 4),
                },
                "the index buffer has 49 rows of 4 indices, the call writes 50 rows of 4",
            ),
            (
                InputError::OutputShape {
                    expected: Shape::new(70, 2),
                    got: Shape::new(69, 2),
                },
                "the output buffer has 69 rows of width 2, the call writes 70 rows of width 2",
            ),
            (
                InputError::InputRows {
                    group: InputGroup::Params,
                    index: 1,
                    expected: 1,
                    got: 4,
                },
                "parameter 1 must have one row, found 4",
            ),
            (
                InputError::InputWidth {
                    group: InputGroup::Inner,
                    index: 0,
                    expected: 3,
                    got: 2,
                },
                "reduced-index variable 0 has width 2, the kernel needs 3",
            ),
            (
                InputError::UnknownBackend {
                    given: "tpu".into(),
                    variable: Some("KEOPS_BACKEND".into()),
                },
                "KEOPS_BACKEND: unknown backend `tpu`: expected auto, cpu, gpu, gpu:N or emulated",
            ),
        ];
        for (e, message) in cases {
            assert_eq!(e.to_string(), message);
            assert_eq!(
                KeopsError::from(e).to_string(),
                format!("bad input: {message}")
            );
        }
    }
}
