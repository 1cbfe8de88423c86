//! Arrays kept on a device across calls: inputs that iterative methods (solvers, gradient
//! descent, k-NN queries against a fixed database) pass to many calls are uploaded once.

use crate::args::Arg;
use crate::error::{Holder, InputError, KeopsError, Result, Role};
use crate::gpu::driver;
use crate::gpu::memory::{Placement, Resident};
use crate::kernel::KeopsFloat;
use crate::options::Backend;
use crate::view::View;

/// Rows of `cols` values with a copy on a device, uploaded once when the array is made (or
/// written) and read in place by every GPU call that takes it as an argument; nothing of it
/// is copied again.
///
/// The array keeps a host copy too: calls that run elsewhere (the CPU, another device)
/// read that one, so a `DeviceArray` is an argument on every backend. Pass it by reference
/// where a kernel takes `impl Arg<T, D>` (the `keops` crate's documentation has an
/// example). [`last_transfers`](super::last_transfers) tells what a call copied.
///
/// A `DeviceArray` is also an output: `eval_into(&mut array, ..)` on its device writes the
/// result in place, on the device only, and copies nothing back. Its host copy is then
/// out of date until [`DeviceArray::host`] (or [`DeviceArray::sync_host`]) fetches it;
/// calls that need it meanwhile (on the CPU, on another device) fetch the values
/// themselves, at each call.
pub struct DeviceArray<T> {
    host: Vec<T>,
    rows: usize,
    cols: usize,
    backend: Backend,
    copy: Option<Resident>,
}

impl Resident {
    /// Whether `v` shows the whole array this is the copy of, in its element type and
    /// row-major order: only then may a call read the copy in place of `v`'s values (a
    /// view of a device array may be narrowed to some of its rows,
    /// [`View::rows_range`]).
    pub fn describes<T: KeopsFloat>(&self, v: &View<'_, T>) -> bool {
        self.bits == T::BITS
            && v.rows() == self.rows
            && v.cols() == self.cols
            && Some(v.data().len()) == self.rows.checked_mul(self.cols)
            && (v.rows() <= 1 || v.row_stride() == v.cols())
            && (v.cols() <= 1 || v.col_stride() == 1)
    }

    /// The first `n` values of the device copy, copied to the host.
    pub fn fetch<T: KeopsFloat>(&self, n: usize) -> Result<Vec<T>> {
        match &self.copy {
            Placement::Gpu { device, buf } => driver::download_resident(*device, buf, n),
            Placement::Emulated(bytes) => {
                let size = (T::BITS / 8) as usize;
                if bytes.len() < n * size {
                    return Err(KeopsError::internal(format!(
                        "{n} values fetched from an emulated device copy of {} bytes",
                        bytes.len()
                    )));
                }
                Ok(bytes[..n * size]
                    .chunks_exact(size)
                    .map(|c| {
                        if size == 4 {
                            T::of(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                        } else {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(c);
                            T::of(f64::from_le_bytes(b))
                        }
                    })
                    .collect())
            }
        }
    }

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
        let (rows, cols) = (view.rows(), view.cols());
        let resident = |copy| Resident {
            copy,
            host_stale: false,
            rows,
            cols,
            bits: T::BITS,
        };
        let copy = match backend {
            Backend::Cpu | Backend::Auto => None,
            Backend::Gpu(device) => Some(resident(Placement::Gpu {
                device,
                buf: driver::upload_resident(device, &host)?,
            })),
            Backend::Emulated => Some(resident(Placement::Emulated(bytes_of(&host)))),
        };
        Ok(DeviceArray {
            host,
            rows,
            cols,
            backend,
            copy,
        })
    }

    /// Replaces the values (same number of rows and width), on the host and in place on
    /// the device.
    pub fn write(&mut self, data: &[T]) -> Result<()> {
        if data.len() != self.host.len() {
            return Err(InputError::Length {
                holder: Holder::DeviceArray,
                role: Role::Transfer,
                rows: self.rows,
                cols: self.cols,
                got: data.len(),
            }
            .into());
        }
        self.host.copy_from_slice(data);
        if let Some(r) = self.copy.as_mut() {
            match &mut r.copy {
                Placement::Gpu { device, buf } => driver::write_resident(*device, buf, data)?,
                Placement::Emulated(bytes) => *bytes = bytes_of(data),
            }
            r.host_stale = false;
        }
        Ok(())
    }

    /// Brings the host copy up to date when a kernel wrote the device copy (a download;
    /// nothing otherwise).
    pub fn sync_host(&mut self) -> Result<()> {
        if let Some(r) = self.copy.as_mut().filter(|r| r.host_stale) {
            let values = r.fetch::<T>(self.host.len())?;
            self.host.copy_from_slice(&values);
            r.host_stale = false;
        }
        Ok(())
    }

    /// The values, row after row, fetched from the device first when a kernel wrote them
    /// there (see [`DeviceArray::sync_host`]).
    pub fn host(&mut self) -> Result<&[T]> {
        self.sync_host()?;
        Ok(&self.host)
    }

    /// A copy of the values, row after row, fetched from the device when a kernel wrote
    /// them there (the host copy is left as is).
    pub fn to_vec(&self) -> Result<Vec<T>> {
        match self.copy.as_ref().filter(|r| r.host_stale) {
            Some(r) => r.fetch(self.host.len()),
            None => Ok(self.host.clone()),
        }
    }

    /// The values as rows of `D` (an error when the width is not `D`), fetched from the
    /// device when a kernel wrote them there.
    pub fn to_rows<const D: usize>(&self) -> Result<Vec<[T; D]>> {
        if self.cols != D {
            return Err(InputError::Width {
                holder: Holder::DeviceArray,
                role: Role::Transfer,
                expected: D,
                got: self.cols,
            }
            .into());
        }
        let values = self.to_vec()?;
        Ok((0..self.rows)
            .map(|r| std::array::from_fn(|k| values[r * D + k]))
            .collect())
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

    /// Whether the host copy holds the current values (false after a kernel wrote the
    /// device copy, until [`DeviceArray::sync_host`]).
    pub fn is_host_current(&self) -> bool {
        self.copy.as_ref().is_none_or(|r| !r.host_stale)
    }

    /// The device copy, for kernels that write their output in place.
    pub(crate) fn resident_mut(&mut self) -> Option<&mut Resident> {
        self.copy.as_mut()
    }

    /// A view of the array that carries its device copy. Its `data` is the host copy, out
    /// of date when [`DeviceArray::is_host_current`] is false: kernel calls then fetch the
    /// values themselves ([`View::fetch_stale`]); other readers should call
    /// [`DeviceArray::sync_host`] first. Narrowed to some rows ([`View::rows_range`]), it
    /// is read from the host copy (an error, [`InputError::StaleView`], while that is out
    /// of date).
    pub fn view(&self) -> View<'_, T> {
        // The host copy always holds `rows * cols` values (made from a checked view;
        // `write` and `sync_host` keep its length), so the view is row-major; the
        // fallback never happens.
        View::row_major(&self.host, self.rows, self.cols)
            .unwrap_or_else(|_| View::empty())
            .with_resident(self.copy.as_ref())
    }
}

impl<T: Copy, const D: usize> Arg<T, D> for &DeviceArray<T> {
    fn view(&self) -> Result<View<'_, T>> {
        if self.cols != D {
            return Err(InputError::Width {
                holder: Holder::DeviceArray,
                role: Role::Argument,
                expected: D,
                got: self.cols,
            }
            .into());
        }
        Ok(DeviceArray::view(self))
    }
}

// Defined here rather than with the view (the bottom layer) since they read the device.
impl<'a, T: KeopsFloat> View<'a, T> {
    /// The current values of rows whose host copy is out of date (a
    /// [`DeviceArray`] a kernel wrote on its device), fetched from the device, row-major;
    /// `None` when the host values are current.
    pub fn fetch_stale(&self) -> Result<Option<Vec<T>>> {
        match self.resident().filter(|r| r.host_stale()) {
            Some(r) if !r.describes(self) => Err(InputError::StaleView.into()),
            Some(r) => r.fetch(self.value_count()?).map(Some),
            None => Ok(None),
        }
    }
}

/// [`View::fetch_stale`] of each view.
pub(crate) fn fetch_stale<T: KeopsFloat>(views: &[View<'_, T>]) -> Result<Vec<Option<Vec<T>>>> {
    views.iter().map(View::fetch_stale).collect()
}

/// The views with the values `fetch_stale` fetched in place of out-of-date host copies.
pub(crate) fn with_fetched<'b, T: Copy>(
    views: &[View<'b, T>],
    fetched: &'b [Option<Vec<T>>],
) -> Result<Vec<View<'b, T>>> {
    views
        .iter()
        .zip(fetched)
        .map(|(v, f)| match f {
            Some(values) => View::row_major(values, v.rows(), v.cols()),
            None => Ok(*v),
        })
        .collect()
}
