//! Arrays kept on a device across calls: inputs that iterative methods (solvers, gradient
//! descent, k-NN queries against a fixed database) pass to many calls are uploaded once.

use super::driver;
use crate::KeopsFloat;
use crate::error::{KeopsError, Result};
use crate::options::Backend;
use crate::view::View;

/// Rows of `cols` values with a copy on a device, uploaded once when the array is made (or
/// written) and read in place by every GPU call that takes it as an argument; nothing of it
/// is copied again.
///
/// The array keeps its host copy too: calls that run elsewhere (the CPU, another device)
/// read that one, so a `DeviceArray` is an argument on every backend. Pass it by reference
/// where a kernel takes `impl Arg<T, D>` (the `keops` crate's documentation has an
/// example). [`last_transfers`](super::last_transfers) tells what a call copied.
pub struct DeviceArray<T> {
    host: Vec<T>,
    rows: usize,
    cols: usize,
    backend: Backend,
    copy: Option<Resident>,
}

/// The device copy of a [`DeviceArray`], as kernel calls see it through a [`View`].
pub struct Resident {
    pub(crate) copy: Placement,
}

/// Where a device copy lives.
pub(crate) enum Placement {
    /// On a GPU.
    Gpu {
        /// The device index.
        device: usize,
        /// The allocation (f32 or f64, as the array's element type).
        buf: driver::Buffer,
    },
    /// In the emulated device: the bytes the interpreter's memory maps at each call.
    Emulated(Vec<u8>),
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.copy {
            Placement::Gpu { device, .. } => write!(f, "Resident(Gpu({device}))"),
            Placement::Emulated(b) => write!(f, "Resident(Emulated, {} bytes)", b.len()),
        }
    }
}

impl Resident {
    /// The backend holding this copy.
    pub fn backend(&self) -> Backend {
        match self.copy {
            Placement::Gpu { device, .. } => Backend::Gpu(device),
            Placement::Emulated(_) => Backend::Emulated,
        }
    }
}

impl<T> std::fmt::Debug for DeviceArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceArray")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("backend", &self.backend)
            .finish()
    }
}

fn bytes_of<T: KeopsFloat>(data: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * (T::BITS / 8) as usize);
    for x in data {
        if T::BITS == 32 {
            out.extend_from_slice(&(x.f64() as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&x.f64().to_le_bytes());
        }
    }
    out
}

impl<T: KeopsFloat> DeviceArray<T> {
    /// An array of the rows `rows`, with a copy on `backend`: `Gpu(i)` (an error when that
    /// GPU is not usable), `Emulated`, `Auto` (GPU 0 when usable, else none) or `Cpu` (no
    /// device copy).
    pub fn from_rows<const D: usize>(backend: Backend, rows: &[[T; D]]) -> Result<Self> {
        Self::from_view(
            backend,
            View::row_major(rows.as_flattened(), rows.len(), D)?,
        )
    }

    /// An array of `rows` rows stored one after the other in `data` (the width is
    /// `data.len() / rows`).
    pub fn from_flat(backend: Backend, data: &[T], rows: usize) -> Result<Self> {
        Self::from_view(backend, View::flat(data, rows)?)
    }

    /// An array holding a copy of `view`'s rows.
    pub fn from_view(backend: Backend, view: View<'_, T>) -> Result<Self> {
        let host = view.to_row_major("a device array")?;
        let backend = match backend {
            Backend::Auto if driver::available() => Backend::Gpu(0),
            Backend::Auto => Backend::Cpu,
            b => b,
        };
        let copy = match backend {
            Backend::Cpu | Backend::Auto => None,
            Backend::Gpu(device) => Some(Resident {
                copy: Placement::Gpu {
                    device,
                    buf: driver::upload_resident(device, &host)?,
                },
            }),
            Backend::Emulated => Some(Resident {
                copy: Placement::Emulated(bytes_of(&host)),
            }),
        };
        Ok(DeviceArray {
            host,
            rows: view.rows,
            cols: view.cols,
            backend,
            copy,
        })
    }

    /// Replaces the values (same number of rows and width), on the host and in place on
    /// the device.
    pub fn write(&mut self, data: &[T]) -> Result<()> {
        if data.len() != self.host.len() {
            return Err(KeopsError::input(format!(
                "{} values written into a device array of {} rows of width {}",
                data.len(),
                self.rows,
                self.cols
            )));
        }
        self.host.copy_from_slice(data);
        match self.copy.as_mut().map(|r| &mut r.copy) {
            Some(Placement::Gpu { device, buf }) => driver::write_resident(*device, buf, data)?,
            Some(Placement::Emulated(bytes)) => *bytes = bytes_of(data),
            None => {}
        }
        Ok(())
    }
}

impl<T> DeviceArray<T> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Width of each row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Where the device copy lives (`Backend::Cpu`: there is none).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The values, row after row (the host copy).
    pub fn host(&self) -> &[T] {
        &self.host
    }

    /// A view of the array that carries its device copy.
    pub fn view(&self) -> View<'_, T> {
        View {
            data: &self.host,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.cols,
            col_stride: 1,
            resident: self.copy.as_ref(),
        }
    }
}

impl<T: Copy, const D: usize> crate::Arg<T, D> for &DeviceArray<T> {
    fn view(&self) -> Result<View<'_, T>> {
        if self.cols != D {
            return Err(KeopsError::input(format!(
                "a device array of width {} where the kernel needs {D}",
                self.cols
            )));
        }
        Ok(DeviceArray::view(self))
    }
}
