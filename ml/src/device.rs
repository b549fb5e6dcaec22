//! Where the worker computes, read from the machine rather than declared: the CPU, or a CUDA GPU
//! whose name, memory and compute capability come from the CUDA driver (`cuda` builds only).
//!
//! The CPU runs the deterministic `f32` path; a GPU runs `bf16` where it has bf16 tensor cores
//! (compute capability 8.0 and up) and `f32` otherwise ([`Precision::best_for`]). GPU answers are
//! not bit-identical to the CPU's (other kernels, other summation order): what crosses between
//! stages is still `f32` hidden states, so a GPU stage and a CPU stage form one pipeline.

use std::{fmt, str::FromStr};

use serde::Serialize;

/// A device named on the command line: `cpu`, `cuda` (GPU 0) or `cuda:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ComputeDevice {
	#[default]
	Cpu,
	Cuda(usize),
}

impl FromStr for ComputeDevice {
	type Err = String;

	fn from_str(text: &str) -> Result<Self, String> {
		match text.trim() {
			"cpu" => Ok(Self::Cpu),
			"cuda" => Ok(Self::Cuda(0)),
			other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
				Some(Ok(index)) => Ok(Self::Cuda(index)),
				_ => Err(format!("device {other:?}: expected cpu, cuda or cuda:N")),
			},
		}
	}
}

impl fmt::Display for ComputeDevice {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		match self {
			Self::Cpu => write!(f, "cpu"),
			Self::Cuda(index) => write!(f, "cuda:{index}"),
		}
	}
}

/// A GPU as its driver describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GpuInfo {
	pub index: usize,
	pub name: String,
	pub memory_mb: u64,
	pub compute_capability: (i32, i32),
}

impl GpuInfo {
	/// Whether the GPU has bf16 tensor cores (Ampere, compute capability 8.0, and later).
	pub fn supports_bf16(&self) -> bool {
		self.compute_capability.0 >= 8
	}

	/// `declared` MiB of memory, at most this GPU's (what a worker training here can promise).
	pub fn cap_memory_mb(&self, declared: u32) -> u32 {
		declared.min(u32::try_from(self.memory_mb).unwrap_or(u32::MAX))
	}
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
	#[error("this blyan-worker was built without CUDA: rebuild it with `--features cuda`")]
	NotBuilt,
	#[error("no CUDA driver could be loaded (libcuda.so): is an NVIDIA driver installed?")]
	NoDriver,
	#[error("no CUDA device {index}: the driver sees {count}")]
	NoSuchDevice { index: usize, count: usize },
	#[error("CUDA driver: {0}")]
	Driver(String),
	#[error("GPU {index} cannot compute in {precision}")]
	UnsupportedPrecision { index: usize, precision: Precision },
	#[error("GPU {index} already computes in {actual} in this process, not {wanted}")]
	PrecisionFixed { index: usize, wanted: Precision, actual: Precision },
}

/// Every GPU the driver sees.
pub fn gpus() -> Result<Vec<GpuInfo>, GpuError> {
	let count = cuda::device_count()?;
	(0..count).map(gpu_info).collect()
}

/// GPU `index` as its driver describes it.
pub fn gpu_info(index: usize) -> Result<GpuInfo, GpuError> {
	let count = cuda::device_count()?;
	if index >= count {
		return Err(GpuError::NoSuchDevice { index, count });
	}
	cuda::describe(index)
}

/// A training backend a worker may declare when it registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
	Cpu,
	Cuda,
}

/// The backends to declare: those `requested` (default: every one this machine runs), each
/// checked against the machine. CUDA needs a `cuda` build and a GPU the driver reports; asking
/// for it without one is an error, never a silent downgrade.
pub fn declarable_backends(
	requested: Option<&[BackendKind]>,
	gpu: &Result<GpuInfo, GpuError>,
) -> Result<Vec<BackendKind>, GpuError> {
	match requested {
		None => Ok(match gpu {
			Ok(_) => vec![BackendKind::Cpu, BackendKind::Cuda],
			Err(_) => vec![BackendKind::Cpu],
		}),
		Some(list) => {
			if list.contains(&BackendKind::Cuda) {
				gpu.as_ref().map_err(Clone::clone)?;
			}
			let mut out: Vec<BackendKind> = Vec::with_capacity(list.len());
			for kind in list {
				if !out.contains(kind) {
					out.push(*kind);
				}
			}
			Ok(out)
		}
	}
}

/// The float type of a GPU's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
	F32,
	Bf16,
}

impl Precision {
	/// bf16 where the GPU has bf16 tensor cores, else f32.
	pub fn best_for(gpu: &GpuInfo) -> Self {
		if gpu.supports_bf16() {
			Self::Bf16
		} else {
			Self::F32
		}
	}
}

impl fmt::Display for Precision {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(match self {
			Self::F32 => "f32",
			Self::Bf16 => "bf16",
		})
	}
}

/// Makes `precision` the float type of every tensor later made on GPU `gpu.index` by this process
/// (burn keeps one setting per device and process, fixed by the first tensor made there).
#[cfg(feature = "cuda")]
pub fn set_gpu_precision(gpu: &GpuInfo, precision: Precision) -> Result<(), GpuError> {
	cuda::set_precision(gpu.index, precision)
}

#[cfg(feature = "cuda")]
mod cuda {
	use super::*;
	use crate::CudaBackend;
	use burn::tensor::backend::DeviceError;
	use burn::{
		backend::cuda::CudaDevice,
		tensor::{get_device_settings, set_default_dtypes, FloatDType, IntDType},
	};
	use cudarc::driver::CudaContext;

	pub fn set_precision(index: usize, precision: Precision) -> Result<(), GpuError> {
		let device = CudaDevice::new(index);
		let dtype = match precision {
			Precision::F32 => FloatDType::F32,
			Precision::Bf16 => FloatDType::BF16,
		};
		match set_default_dtypes::<CudaBackend>(&device, dtype, IntDType::I32) {
			Ok(()) => Ok(()),
			Err(DeviceError::UnsupportedDType { .. }) => {
				Err(GpuError::UnsupportedPrecision { index, precision })
			}
			// Tensors were made there before: the setting in effect stands.
			Err(_) => match get_device_settings::<CudaBackend>(&device).float_dtype {
				FloatDType::BF16 if precision == Precision::Bf16 => Ok(()),
				FloatDType::F32 if precision == Precision::F32 => Ok(()),
				other => Err(GpuError::PrecisionFixed {
					index,
					wanted: precision,
					actual: if other == FloatDType::BF16 {
						Precision::Bf16
					} else {
						Precision::F32
					},
				}),
			},
		}
	}

	/// cudarc loads the driver library on first use and panics if it is absent: look for it first.
	/// A panic that still comes (a driver older than the CUDA version the bindings target lacks
	/// a symbol) is caught and named; the panic hook is left alone (other threads may panic).
	fn driver<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, GpuError> {
		// SAFETY: only tries to open the driver library by its usual names.
		if !unsafe { cudarc::driver::sys::is_culib_present() } {
			return Err(GpuError::NoDriver);
		}
		std::panic::catch_unwind(f).map_err(|panic| {
			let message = panic
				.downcast_ref::<String>()
				.cloned()
				.or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
				.unwrap_or_else(|| "the CUDA bindings panicked".into());
			GpuError::Driver(message)
		})
	}

	pub fn device_count() -> Result<usize, GpuError> {
		let count =
			driver(CudaContext::device_count)?.map_err(|e| GpuError::Driver(e.to_string()))?;
		Ok(count.max(0) as usize)
	}

	pub fn describe(index: usize) -> Result<GpuInfo, GpuError> {
		let fail = |e: cudarc::driver::DriverError| GpuError::Driver(e.to_string());
		let ctx = driver(move || CudaContext::new(index))?.map_err(fail)?;
		Ok(GpuInfo {
			index,
			name: ctx.name().map_err(fail)?,
			memory_mb: (ctx.total_mem().map_err(fail)? / (1 << 20)) as u64,
			compute_capability: ctx.compute_capability().map_err(fail)?,
		})
	}
}

#[cfg(not(feature = "cuda"))]
mod cuda {
	use super::*;

	pub fn device_count() -> Result<usize, GpuError> {
		Err(GpuError::NotBuilt)
	}

	pub fn describe(_index: usize) -> Result<GpuInfo, GpuError> {
		Err(GpuError::NotBuilt)
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn devices_parse_from_the_command_line() {
		assert_eq!("cpu".parse(), Ok(ComputeDevice::Cpu));
		assert_eq!("cuda".parse(), Ok(ComputeDevice::Cuda(0)));
		assert_eq!("cuda:3".parse(), Ok(ComputeDevice::Cuda(3)));
		for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
			assert!(bad.parse::<ComputeDevice>().is_err(), "{bad}");
		}
		assert_eq!(ComputeDevice::Cuda(2).to_string(), "cuda:2");
	}

	fn h200() -> GpuInfo {
		GpuInfo {
			index: 0,
			name: "NVIDIA H200".into(),
			memory_mb: 143_771,
			compute_capability: (9, 0),
		}
	}

	#[test]
	fn cuda_is_declared_only_when_the_driver_reports_a_gpu() {
		use BackendKind::*;
		let none = Err(GpuError::NoDriver);
		assert_eq!(declarable_backends(None, &none), Ok(vec![Cpu]));
		assert_eq!(declarable_backends(None, &Ok(h200())), Ok(vec![Cpu, Cuda]));
		assert_eq!(declarable_backends(Some(&[Cuda]), &none), Err(GpuError::NoDriver));
		assert_eq!(
			declarable_backends(Some(&[Cpu, Cuda]), &Err(GpuError::NotBuilt)),
			Err(GpuError::NotBuilt)
		);
		assert_eq!(declarable_backends(Some(&[Cpu]), &none), Ok(vec![Cpu]));
		assert_eq!(declarable_backends(Some(&[Cpu, Cuda]), &Ok(h200())), Ok(vec![Cpu, Cuda]));
		assert_eq!((h200().cap_memory_mb(200_000), h200().cap_memory_mb(4096)), (143_771, 4096));
		assert!(h200().supports_bf16());
		assert!(!GpuInfo { compute_capability: (7, 5), ..h200() }.supports_bf16());
	}

	#[cfg(not(feature = "cuda"))]
	#[test]
	fn a_cpu_build_refuses_cuda_with_a_clear_error() {
		assert_eq!(gpus(), Err(GpuError::NotBuilt));
		assert_eq!(gpu_info(0), Err(GpuError::NotBuilt));
	}
}
