//! The PTX interpreter of `keops-ptx-interp` as a [`Launcher`] of the SIMT harness
//! ([`keops_gpu_kernels::simt::run_reduction_on`], `run_gather_on`): each kernel is
//! printed as PTX, the text parsed back and run on the harness's memory, so that a test
//! can require the bits the kernel IR interpreter ([`keops_gpu_kernels::simt::Kir`])
//! computes from the very text a driver would receive.

use keops_gpu_kernels::kir::Kernel;
use keops_gpu_kernels::simt::{GlobalMemory, Launch, Launcher, SimtError};
use keops_ir::Real;
use keops_ir::lower::Precision;
use keops_ptx_interp::{Fault, PtxModule};

/// Runs kernels as printed PTX, in the PTX interpreter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ptx;

/// The harness's global memory, as the PTX interpreter reads and writes it.
struct Memory<'a>(&'a mut GlobalMemory);

impl keops_ptx_interp::GlobalMemory for Memory<'_> {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Fault> {
        self.0.read_bytes(addr, out).map_err(Fault::IllegalAddress)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.0
            .write_bytes(addr, data)
            .map_err(Fault::IllegalAddress)
    }
}

impl Launcher for Ptx {
    fn launch<R: Real>(
        &self,
        kernel: &Kernel,
        _: Precision,
        l: Launch,
        params: &[u64],
        mem: &mut GlobalMemory,
    ) -> Result<(), SimtError> {
        let bad = |what: String| SimtError::Launch {
            kernel: kernel.name.clone(),
            what,
        };
        let text = keops_gpu_kernels::ptx::module(std::slice::from_ref(kernel)).map_err(bad)?;
        let module = PtxModule::parse(&text).map_err(bad)?;
        let k = module
            .kernel(&kernel.name)
            .ok_or_else(|| bad("missing from its printed module".into()))?;
        let dim = |v: u64| u32::try_from(v).map_err(|_| bad(format!("launch dimension {v}")));
        let shared = usize::try_from(l.shared_bytes).map_err(|_| bad("shared memory".into()))?;
        k.launch(
            [dim(l.grid[0])?, dim(l.grid[1])?, 1],
            [dim(l.block)?, 1, 1],
            shared,
            params,
            &mut Memory(mem),
        )
        .map_err(|e| bad(e.to_string()))
    }
}
