//! The `host` sampler: the machine's CPU, memory, swap, load, disks, disk I/O and network, in
//! Telegraf's measurements (`cpu`, `mem`, `swap`, `system`, `disk`, `diskio`, `net`) and field
//! names, so that dashboards built for Telegraf work unchanged.
//!
//! Load, uptime and disk space come from sysinfo. CPU time per state, cached and buffered
//! memory, swap traffic, per-device I/O and per-interface drops come from `/proc` (read with the
//! parsers of `procfs.rs`), because sysinfo does not expose them. Each part is independent: one
//! that fails is reported and the others are still written.

use std::path::PathBuf;

use sysinfo::{DiskRefreshKind, Disks, System};
use tally_engine::PointBatch;

use super::procfs::{self, CpuTimes, ProcError};
use super::{SampleContext, Sampler, SamplerError, float, integer, named, push_point};

/// What the host sampler reads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostOptions {
    /// Where `/proc` is (another path for a container that mounts the host's `/proc`
    /// elsewhere, or for tests).
    pub proc_root: PathBuf,
    /// Whether to write per-core `cpu` series besides `cpu-total`.
    pub per_cpu: bool,
    /// Whether to write `disk` space series (sysinfo's list of mounted disks).
    pub disks: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            proc_root: PathBuf::from("/proc"),
            per_cpu: true,
            disks: true,
        }
    }
}

/// The `host` sampler. Created once; each run compares CPU times with the previous run.
pub struct HostSampler {
    options: HostOptions,
    previous_cpu: Vec<CpuTimes>,
    disks: Disks,
}

impl HostSampler {
    /// Takes a first CPU reading so that the first run already has usage percentages.
    pub fn new(options: HostOptions) -> HostSampler {
        let previous_cpu = read(&options.proc_root, "stat")
            .ok()
            .and_then(|text| procfs::parse_stat(&text).ok())
            .unwrap_or_default();
        let disks = if options.disks {
            Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
        } else {
            Disks::new()
        };
        HostSampler {
            options,
            previous_cpu,
            disks,
        }
    }

    fn path(&self, file: &str) -> String {
        self.options.proc_root.join(file).display().to_string()
    }

    fn read(&self, file: &str) -> Result<String, SamplerError> {
        read(&self.options.proc_root, file)
    }

    fn format_error(&self, file: &str, e: ProcError) -> SamplerError {
        SamplerError::Format {
            path: self.path(file),
            line: e.line,
            reason: e.reason,
        }
    }

    fn cpu(
        &mut self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let text = self.read("stat")?;
        let now = procfs::parse_stat(&text).map_err(|e| self.format_error("stat", e))?;
        for times in &now {
            let Some(before) = self.previous_cpu.iter().find(|p| p.name == times.name) else {
                continue;
            };
            let is_total = times.name == "cpu";
            if !is_total && !self.options.per_cpu {
                continue;
            }
            let Some(usage) = times.usage_since(before) else {
                continue;
            };
            let tag = if is_total {
                "cpu-total"
            } else {
                times.name.as_str()
            };
            push_point(
                batch,
                "cpu",
                &[("cpu", tag), ("host", ctx.host)],
                named(usage.iter().map(|(k, v)| (*k, float(*v)))),
                ctx.timestamp_ns,
            )?;
        }
        self.previous_cpu = now;
        Ok(())
    }

    fn memory(
        &self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let text = self.read("meminfo")?;
        let m = procfs::parse_meminfo(&text).map_err(|e| self.format_error("meminfo", e))?;
        let get = |k: &str| m.get(k).copied().unwrap_or(0);
        let total = get("MemTotal");
        let free = get("MemFree");
        let buffered = get("Buffers");
        // As `free` and Telegraf count it: page cache plus reclaimable slab.
        let cached = get("Cached").saturating_add(get("SReclaimable"));
        let available = m
            .get("MemAvailable")
            .copied()
            .unwrap_or(free + buffered + cached);
        let used = total
            .saturating_sub(free)
            .saturating_sub(buffered)
            .saturating_sub(cached);
        let percent = |part: u64| {
            if total == 0 {
                0.0
            } else {
                part as f64 * 100.0 / total as f64
            }
        };
        push_point(
            batch,
            "mem",
            &[("host", ctx.host)],
            named([
                ("total", integer(total)),
                ("available", integer(available)),
                ("used", integer(used)),
                ("free", integer(free)),
                ("cached", integer(cached)),
                ("buffered", integer(buffered)),
                ("active", integer(get("Active"))),
                ("inactive", integer(get("Inactive"))),
                ("shared", integer(get("Shmem"))),
                ("slab", integer(get("Slab"))),
                ("dirty", integer(get("Dirty"))),
                ("used_percent", float(percent(used))),
                ("available_percent", float(percent(available))),
            ]),
            ctx.timestamp_ns,
        )?;
        let swap_total = get("SwapTotal");
        let swap_free = get("SwapFree");
        let swap_used = swap_total.saturating_sub(swap_free);
        let mut fields = named([
            ("total", integer(swap_total)),
            ("used", integer(swap_used)),
            ("free", integer(swap_free)),
            (
                "used_percent",
                float(if swap_total == 0 {
                    0.0
                } else {
                    swap_used as f64 * 100.0 / swap_total as f64
                }),
            ),
        ]);
        // Pages swapped in and out since boot, in bytes (4 KiB pages, as Telegraf counts them).
        if let Ok(text) = self.read("vmstat")
            && let Ok(vm) = procfs::parse_vmstat(&text)
        {
            let page = 4096u64;
            fields.extend(named([
                (
                    "in",
                    integer(vm.get("pswpin").copied().unwrap_or(0).saturating_mul(page)),
                ),
                (
                    "out",
                    integer(vm.get("pswpout").copied().unwrap_or(0).saturating_mul(page)),
                ),
            ]));
        }
        push_point(
            batch,
            "swap",
            &[("host", ctx.host)],
            fields,
            ctx.timestamp_ns,
        )
    }

    fn system(
        &self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let load = System::load_average();
        let n_cpus = self.previous_cpu.iter().filter(|c| c.name != "cpu").count();
        let n_cpus = if n_cpus == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            n_cpus
        };
        push_point(
            batch,
            "system",
            &[("host", ctx.host)],
            named([
                ("load1", float(load.one)),
                ("load5", float(load.five)),
                ("load15", float(load.fifteen)),
                ("n_cpus", integer(n_cpus as u64)),
                ("uptime", integer(System::uptime())),
            ]),
            ctx.timestamp_ns,
        )
    }

    fn disks(
        &mut self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let mut seen_mounts = std::collections::HashSet::new();
        for disk in self.disks.list() {
            let path = disk.mount_point().display().to_string();
            if !seen_mounts.insert(path.clone()) {
                continue;
            }
            let total = disk.total_space();
            if total == 0 {
                continue;
            }
            let free = disk.available_space();
            // Blocks reserved for root count as used, so used + free = total.
            let used = total.saturating_sub(free);
            let device = disk.name().to_string_lossy();
            let device = device.strip_prefix("/dev/").unwrap_or(&device).to_string();
            let fstype = disk.file_system().to_string_lossy().into_owned();
            push_point(
                batch,
                "disk",
                &[
                    ("device", &device),
                    ("fstype", &fstype),
                    ("host", ctx.host),
                    ("path", &path),
                ],
                named([
                    ("total", integer(total)),
                    ("free", integer(free)),
                    ("used", integer(used)),
                    ("used_percent", float(used as f64 * 100.0 / total as f64)),
                ]),
                ctx.timestamp_ns,
            )?;
        }
        Ok(())
    }

    fn diskio(
        &self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let text = self.read("diskstats")?;
        let disks =
            procfs::parse_diskstats(&text).map_err(|e| self.format_error("diskstats", e))?;
        for d in disks {
            // Devices that never did I/O (unused loop and ram devices) would only add series.
            if d.reads == 0 && d.writes == 0 {
                continue;
            }
            push_point(
                batch,
                "diskio",
                &[("host", ctx.host), ("name", &d.name)],
                named([
                    ("reads", integer(d.reads)),
                    ("writes", integer(d.writes)),
                    ("read_bytes", integer(d.sectors_read.saturating_mul(512))),
                    (
                        "write_bytes",
                        integer(d.sectors_written.saturating_mul(512)),
                    ),
                    ("read_time", integer(d.read_time_ms)),
                    ("write_time", integer(d.write_time_ms)),
                    ("io_time", integer(d.io_time_ms)),
                    ("weighted_io_time", integer(d.weighted_io_time_ms)),
                    ("iops_in_progress", integer(d.in_progress)),
                    ("merged_reads", integer(d.merged_reads)),
                    ("merged_writes", integer(d.merged_writes)),
                ]),
                ctx.timestamp_ns,
            )?;
        }
        Ok(())
    }

    fn net(
        &self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let text = self.read("net/dev")?;
        let interfaces =
            procfs::parse_net_dev(&text).map_err(|e| self.format_error("net/dev", e))?;
        for n in interfaces {
            // Telegraf skips the loopback interface unless asked for it.
            if n.interface == "lo" {
                continue;
            }
            push_point(
                batch,
                "net",
                &[("host", ctx.host), ("interface", &n.interface)],
                named([
                    ("bytes_recv", integer(n.bytes_recv)),
                    ("bytes_sent", integer(n.bytes_sent)),
                    ("packets_recv", integer(n.packets_recv)),
                    ("packets_sent", integer(n.packets_sent)),
                    ("err_in", integer(n.err_in)),
                    ("err_out", integer(n.err_out)),
                    ("drop_in", integer(n.drop_in)),
                    ("drop_out", integer(n.drop_out)),
                ]),
                ctx.timestamp_ns,
            )?;
        }
        Ok(())
    }
}

fn read(proc_root: &std::path::Path, file: &str) -> Result<String, SamplerError> {
    let path = proc_root.join(file);
    std::fs::read_to_string(&path).map_err(|source| SamplerError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl Sampler for HostSampler {
    fn sample(
        &mut self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let mut errors = Vec::new();
        let mut keep = |r: Result<(), SamplerError>| {
            if let Err(e) = r {
                errors.push(e);
            }
        };
        keep(self.cpu(ctx, batch));
        keep(self.memory(ctx, batch));
        keep(self.system(ctx, batch));
        if self.options.disks {
            keep(self.disks(ctx, batch));
        }
        keep(self.diskio(ctx, batch));
        keep(self.net(ctx, batch));
        SamplerError::combine(errors)
    }
}
