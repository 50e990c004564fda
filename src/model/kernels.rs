//! Which CPU kernels run the models: chosen once per process (`--cpu-kernels`, env
//! `PARLEY_CPU_KERNELS`), resolved against the CPU when a model loads.

use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::Device;

use super::ModelError;

/// The kernels for CPU inference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuKernels {
    /// int8 where the CPU has AVX-512 VNNI, f32 elsewhere.
    #[default]
    Auto,
    /// int8 (AVX-512 VNNI); an error on a CPU without it.
    Int8,
    /// f32 (OpenBLAS SGEMM with AVX-512 or AVX2, or the built-in GEMM).
    F32,
}

static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Sets the kernels models loaded from now on use.
pub fn set_cpu_kernels(k: CpuKernels) {
    CHOICE.store(k as u8, Ordering::Relaxed);
}

pub fn cpu_kernels() -> CpuKernels {
    match CHOICE.load(Ordering::Relaxed) {
        1 => CpuKernels::Int8,
        2 => CpuKernels::F32,
        _ => CpuKernels::Auto,
    }
}

/// Whether `encoder`, loaded from `dir` onto `device` with `choice`, runs the int8 kernels:
/// the device and CPU allow them and the model is one they implement. Where `auto` cannot use
/// them a line says why; where `int8` was asked for it is an error.
pub(crate) fn int8_for(
    encoder: &super::BertEncoder,
    dir: &std::path::Path,
    device: &Device,
    choice: CpuKernels,
) -> Result<bool, ModelError> {
    if !use_int8(device, choice)? {
        return Ok(false);
    }
    match encoder.int8_blocker() {
        None => Ok(true),
        Some(why) if choice == CpuKernels::Int8 => Err(ModelError::Device(format!(
            "--cpu-kernels int8 cannot run {}: {why}",
            dir.display()
        ))),
        Some(why) => {
            tracing::info!(model = %dir.display(), "f32 kernels: the int8 ones cannot run this model: {why}");
            Ok(false)
        }
    }
}

/// Whether a model loaded on `device` with `choice` runs the int8 kernels, as far as the
/// device and CPU go. Asking for int8 where they cannot run is an error, never a silent
/// fallback.
fn use_int8(device: &Device, choice: CpuKernels) -> Result<bool, ModelError> {
    if !device.is_cpu() {
        if choice == CpuKernels::Int8 {
            return Err(ModelError::Device(
                "--cpu-kernels int8 applies to the CPU only; the model is on a GPU".into(),
            ));
        }
        return Ok(false);
    }
    let supported = int8_supported();
    match choice {
        CpuKernels::Auto => Ok(supported),
        CpuKernels::F32 => Ok(false),
        CpuKernels::Int8 if supported => Ok(true),
        CpuKernels::Int8 => Err(ModelError::Device(
            "--cpu-kernels int8 was asked for, but this CPU has no AVX-512 VNNI (use auto or f32)"
                .into(),
        )),
    }
}

fn int8_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::int8::supported()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
