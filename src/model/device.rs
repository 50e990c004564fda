use candle_core::Device;

use super::ModelError;

/// Where the model runs, as asked for on the command line (`cpu`, `cuda`, `cuda:N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceSpec::Cuda)
                    .map_err(|_| format!("bad CUDA device ordinal in {s:?}")),
                None => Err(format!(
                    "unknown device {s:?}: expected cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Opens the device. Asking for CUDA where it is not available is an error: Parley never falls
/// back to the CPU silently, since that would hide a misconfigured deployment.
pub fn parse_device(spec: DeviceSpec) -> Result<Device, ModelError> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            if !cfg!(feature = "cuda") {
                return Err(ModelError::Device(format!(
                    "CUDA device {n} was asked for, but this build of parley has no CUDA support \
                     (rebuild with `--features cuda`)"
                )));
            }
            Device::new_cuda(n)
                .map_err(|e| ModelError::Device(format!("CUDA device {n} is not available: {e}")))
        }
    }
}
