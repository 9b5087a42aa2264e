//! The `gpu` sampler: every NVIDIA GPU through NVML (`libnvidia-ml.so.1`, loaded at run time by
//! nvml-wrapper), written as Telegraf's `nvidia_smi` measurement with tags `index`, `uuid` and
//! `name`.
//!
//! Where no driver is installed the library cannot be loaded: [`GpuSampler::open`] fails with a
//! reason that tallyd logs once and shows in `/health`, and nothing else changes. Each NVML call
//! may fail on its own (many are not supported on every board); a field whose call fails is
//! left out of that point rather than failing the run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, TemperatureSensor,
};
use nvml_wrapper::enums::device::UsedGpuMemory;
use tally_engine::PointBatch;

use super::{SampleContext, Sampler, SamplerError, float, integer, named, push_point};

/// The library name NVML is loaded by when no path is configured.
const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// How the GPU sampler finds NVML.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuOptions {
    /// Path of `libnvidia-ml.so.1`; by default the dynamic loader's search path is used.
    pub library_path: Option<OsString>,
}

/// GPU memory held by each process (pid → bytes), as the GPU sampler last read it; the process
/// sampler adds it to its `procstat` points.
#[derive(Clone, Default)]
pub struct GpuProcessMemory {
    inner: Arc<Mutex<HashMap<u32, u64>>>,
}

impl GpuProcessMemory {
    /// The last reading.
    pub fn snapshot(&self) -> HashMap<u32, u64> {
        self.inner.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Replaces the reading.
    pub fn set(&self, by_pid: HashMap<u32, u64>) {
        if let Ok(mut m) = self.inner.lock() {
            *m = by_pid;
        }
    }
}

/// One GPU's reading; `None` where the board or driver does not support the query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuDevice {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    /// Percent of time a kernel ran.
    pub utilization_gpu: Option<u32>,
    /// Percent of time device memory was read or written.
    pub utilization_memory: Option<u32>,
    /// Bytes.
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    pub memory_free: Option<u64>,
    /// Milliwatts.
    pub power_draw_mw: Option<u32>,
    pub power_limit_mw: Option<u32>,
    /// Millijoules since the driver was loaded.
    pub energy_mj: Option<u64>,
    /// Degrees Celsius.
    pub temperature: Option<u32>,
    /// MHz.
    pub clock_sm: Option<u32>,
    pub clock_memory: Option<u32>,
    /// Percent of the fan's maximum speed (first fan).
    pub fan_speed: Option<u32>,
    /// KB/s over the last 20 ms, as NVML measures it.
    pub pcie_tx_kbs: Option<u32>,
    pub pcie_rx_kbs: Option<u32>,
    pub ecc_corrected: Option<u64>,
    pub ecc_uncorrected: Option<u64>,
    /// NVML's clock throttle reasons bitmask.
    pub throttle_reasons: Option<u64>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Adds one `nvidia_smi` point per GPU. Units follow Telegraf's nvidia_smi input: memory in MiB,
/// power in W, clocks in MHz; energy is in joules and PCIe throughput in KB/s.
pub fn gpu_points(
    devices: &[GpuDevice],
    ctx: &SampleContext<'_>,
    batch: &mut PointBatch<'static>,
) -> Result<(), SamplerError> {
    for d in devices {
        let mut fields = Vec::new();
        let mut add = |name: &'static str, value: Option<f64>| {
            if let Some(v) = value {
                fields.push((name, float(v)));
            }
        };
        add("utilization_gpu", d.utilization_gpu.map(f64::from));
        add("utilization_memory", d.utilization_memory.map(f64::from));
        add("memory_used", d.memory_used.map(|b| b as f64 / MIB));
        add("memory_total", d.memory_total.map(|b| b as f64 / MIB));
        add("memory_free", d.memory_free.map(|b| b as f64 / MIB));
        add(
            "power_draw",
            d.power_draw_mw.map(|mw| f64::from(mw) / 1000.0),
        );
        add(
            "power_limit",
            d.power_limit_mw.map(|mw| f64::from(mw) / 1000.0),
        );
        add(
            "energy_consumption",
            d.energy_mj.map(|mj| mj as f64 / 1000.0),
        );
        add("temperature_gpu", d.temperature.map(f64::from));
        add("clocks_current_sm", d.clock_sm.map(f64::from));
        add("clocks_current_memory", d.clock_memory.map(f64::from));
        add("fan_speed", d.fan_speed.map(f64::from));
        add("pcie_tx", d.pcie_tx_kbs.map(f64::from));
        add("pcie_rx", d.pcie_rx_kbs.map(f64::from));
        add("ecc_errors_corrected", d.ecc_corrected.map(|v| v as f64));
        add(
            "ecc_errors_uncorrected",
            d.ecc_uncorrected.map(|v| v as f64),
        );
        let mut fields = named(fields);
        if let Some(bits) = d.throttle_reasons {
            fields.extend(named([("throttle_reasons", integer(bits))]));
        }
        let index = d.index.to_string();
        push_point(
            batch,
            "nvidia_smi",
            &[
                ("host", ctx.host),
                ("index", &index),
                ("name", &d.name),
                ("uuid", &d.uuid),
            ],
            fields,
            ctx.timestamp_ns,
        )?;
    }
    Ok(())
}

/// The `gpu` sampler: holds the loaded NVML library.
pub struct GpuSampler {
    nvml: Nvml,
    process_memory: GpuProcessMemory,
}

impl GpuSampler {
    /// Loads NVML. The error is the one line tallyd logs when GPUs cannot be sampled here.
    pub fn open(options: &GpuOptions) -> Result<GpuSampler, SamplerError> {
        let library = options
            .library_path
            .clone()
            .unwrap_or_else(|| OsString::from(DEFAULT_LIBRARY));
        let nvml =
            Nvml::builder()
                .lib_path(&library)
                .init()
                .map_err(|e| SamplerError::Unavailable {
                    sampler: "gpu sampler".to_string(),
                    reason: format!(
                        "cannot load the NVIDIA driver library {} ({e}); no NVIDIA driver is \
                     installed here, so no nvidia_smi series are written",
                        library.to_string_lossy()
                    ),
                })?;
        Ok(GpuSampler {
            nvml,
            process_memory: GpuProcessMemory::default(),
        })
    }

    /// The per-process GPU memory this sampler keeps up to date, for the process sampler.
    pub fn process_memory(&self) -> GpuProcessMemory {
        self.process_memory.clone()
    }

    fn read_devices(&self) -> Result<(Vec<GpuDevice>, HashMap<u32, u64>), SamplerError> {
        let count = self
            .nvml
            .device_count()
            .map_err(|e| SamplerError::Gpu(format!("nvmlDeviceGetCount failed: {e}")))?;
        let mut devices = Vec::new();
        let mut by_pid: HashMap<u32, u64> = HashMap::new();
        for index in 0..count {
            let device = self
                .nvml
                .device_by_index(index)
                .map_err(|e| SamplerError::Gpu(format!("GPU {index}: {e}")))?;
            let utilization = device.utilization_rates().ok();
            let memory = device.memory_info().ok();
            devices.push(GpuDevice {
                index,
                uuid: device.uuid().unwrap_or_else(|_| format!("unknown-{index}")),
                name: device.name().unwrap_or_else(|_| "unknown".to_string()),
                utilization_gpu: utilization.as_ref().map(|u| u.gpu),
                utilization_memory: utilization.as_ref().map(|u| u.memory),
                memory_used: memory.as_ref().map(|m| m.used),
                memory_total: memory.as_ref().map(|m| m.total),
                memory_free: memory.as_ref().map(|m| m.free),
                power_draw_mw: device.power_usage().ok(),
                power_limit_mw: device.enforced_power_limit().ok(),
                energy_mj: device.total_energy_consumption().ok(),
                temperature: device.temperature(TemperatureSensor::Gpu).ok(),
                clock_sm: device.clock_info(Clock::SM).ok(),
                clock_memory: device.clock_info(Clock::Memory).ok(),
                fan_speed: device.fan_speed(0).ok(),
                pcie_tx_kbs: device.pcie_throughput(PcieUtilCounter::Send).ok(),
                pcie_rx_kbs: device.pcie_throughput(PcieUtilCounter::Receive).ok(),
                ecc_corrected: device
                    .total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate)
                    .ok(),
                ecc_uncorrected: device
                    .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)
                    .ok(),
                throttle_reasons: device.current_throttle_reasons().ok().map(|r| r.bits()),
            });
            let processes = device
                .running_compute_processes()
                .unwrap_or_default()
                .into_iter()
                .chain(device.running_graphics_processes().unwrap_or_default());
            for p in processes {
                if let UsedGpuMemory::Used(bytes) = p.used_gpu_memory {
                    *by_pid.entry(p.pid).or_default() += bytes;
                }
            }
        }
        Ok((devices, by_pid))
    }
}

impl Sampler for GpuSampler {
    fn sample(
        &mut self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let (devices, by_pid) = self.read_devices()?;
        self.process_memory.set(by_pid);
        gpu_points(&devices, ctx, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_library_disables_the_sampler_with_a_reason_naming_it() {
        let options = GpuOptions {
            library_path: Some(OsString::from("/nonexistent/libnvidia-ml.so.1")),
        };
        let err = GpuSampler::open(&options).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/libnvidia-ml.so.1"), "{err}");
        assert!(err.contains("no NVIDIA driver"), "{err}");
    }

    #[test]
    fn readings_become_nvidia_smi_points_in_telegraf_units() {
        let device = GpuDevice {
            index: 1,
            uuid: "GPU-abc".into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            utilization_gpu: Some(87),
            memory_used: Some(40 * 1024 * 1024 * 1024),
            memory_total: Some(80 * 1024 * 1024 * 1024),
            power_draw_mw: Some(312_500),
            energy_mj: Some(5_000_000),
            throttle_reasons: Some(4),
            ..GpuDevice::default()
        };
        let mut batch = PointBatch::new();
        let ctx = SampleContext {
            timestamp_ns: 7,
            host: "node-1",
            interval: std::time::Duration::from_secs(10),
        };
        gpu_points(&[device], &ctx, &mut batch).unwrap();
        let point = batch.point(0).unwrap();
        assert_eq!(point.measurement(), "nvidia_smi");
        let tags: Vec<(&str, &str)> = point
            .tags()
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        assert_eq!(
            tags,
            [
                ("host", "node-1"),
                ("index", "1"),
                ("name", "NVIDIA H100 80GB HBM3"),
                ("uuid", "GPU-abc")
            ]
        );
        let field = |k: &str| {
            point
                .fields()
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            field("utilization_gpu"),
            Some(tally_engine::FieldValue::Float(87.0))
        );
        assert_eq!(
            field("memory_used"),
            Some(tally_engine::FieldValue::Float(40960.0))
        );
        assert_eq!(
            field("power_draw"),
            Some(tally_engine::FieldValue::Float(312.5))
        );
        assert_eq!(
            field("energy_consumption"),
            Some(tally_engine::FieldValue::Float(5000.0))
        );
        assert_eq!(
            field("throttle_reasons"),
            Some(tally_engine::FieldValue::Integer(4))
        );
        assert_eq!(
            field("fan_speed"),
            None,
            "unsupported readings are left out"
        );
        assert_eq!(point.timestamp(), 7);
    }
}
