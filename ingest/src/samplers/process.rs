//! The `process` sampler: CPU, memory, threads, open files and GPU memory of the processes whose
//! name or command line matches a pattern, written as Telegraf's `procstat` measurement.
//!
//! Every run lists the processes once (sysinfo, without threads) and matches each against the
//! patterns in order; the first pattern that matches names the `pattern` tag. tallyd's own
//! process is never matched (the `self` sampler covers it).

use std::path::PathBuf;

use regex::Regex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
use tally_engine::PointBatch;

use super::gpu::GpuProcessMemory;
use super::{SampleContext, Sampler, SamplerError, float, integer, named, push_point};

/// The inference servers matched out of the box: vLLM, Hugging Face TGI (launcher, router and
/// Python shards), llama.cpp's server, Ollama, SGLang, NVIDIA Triton and LMDeploy.
pub const DEFAULT_PROCESS_PATTERNS: &[&str] = &[
    "vllm",
    "text-generation-launcher",
    "text-generation-router",
    "text-generation-server",
    "llama-server",
    "ollama",
    "sglang",
    "tritonserver",
    "lmdeploy",
];

/// Checks that every pattern is a regular expression; the error names the first that is not.
pub fn validate_patterns(patterns: &[String]) -> Result<(), SamplerError> {
    for p in patterns {
        Regex::new(p).map_err(|e| SamplerError::InvalidPattern {
            pattern: p.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// What the process sampler matches.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessOptions {
    /// Regular expressions matched against the process name and its whole command line.
    pub patterns: Vec<String>,
    /// Where `/proc` is, for thread counts.
    pub proc_root: PathBuf,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            patterns: DEFAULT_PROCESS_PATTERNS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

/// The `process` sampler.
pub struct ProcessSampler {
    patterns: Vec<(String, Regex)>,
    proc_root: PathBuf,
    system: System,
    own_pid: Option<Pid>,
    gpu_memory: Option<GpuProcessMemory>,
}

fn refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .with_cmd(UpdateKind::OnlyIfNotSet)
        .without_tasks()
}

impl ProcessSampler {
    /// Compiles the patterns (an invalid one is an error naming it) and takes a first reading,
    /// so that the first run already has CPU percentages.
    pub fn new(options: ProcessOptions) -> Result<ProcessSampler, SamplerError> {
        let patterns = options
            .patterns
            .iter()
            .map(|p| {
                Regex::new(p)
                    .map(|r| (p.clone(), r))
                    .map_err(|e| SamplerError::InvalidPattern {
                        pattern: p.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        keep_no_proc_files_open();
        let mut system = System::new();
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, refresh_kind());
        Ok(ProcessSampler {
            patterns,
            proc_root: options.proc_root,
            system,
            own_pid: sysinfo::get_current_pid().ok(),
            gpu_memory: None,
        })
    }

    /// Adds the `gpu_memory_used` field from the GPU sampler's per-process readings.
    pub fn with_gpu_memory(mut self, gpu_memory: GpuProcessMemory) -> ProcessSampler {
        self.gpu_memory = Some(gpu_memory);
        self
    }

    /// The first pattern matching a process name or command line.
    fn matching_pattern(&self, name: &str, command_line: &str) -> Option<&str> {
        self.patterns
            .iter()
            .find(|(_, re)| re.is_match(name) || re.is_match(command_line))
            .map(|(p, _)| p.as_str())
    }
}

/// sysinfo keeps one `/proc/<pid>/stat` file open per process it lists, up to half the
/// process's file limit, to save reopening them; a database needs its file descriptors more
/// than the sampler needs those microseconds, so none are kept open.
pub(crate) fn keep_no_proc_files_open() {
    sysinfo::set_open_files_limit(0);
}

/// The name to tag a process with: its kernel name (`comm`), unless the kernel cut it at 15
/// bytes and the program's file name is the longer original.
fn display_name(comm: &str, first_arg: Option<&str>) -> String {
    if comm.len() >= 15
        && let Some(program) = first_arg.and_then(|a| a.rsplit('/').next())
        && program.starts_with(comm)
    {
        return program.to_string();
    }
    comm.to_string()
}

impl Sampler for ProcessSampler {
    fn sample(
        &mut self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::All, true, refresh_kind());
        let gpu_memory = self.gpu_memory.as_ref().map(|g| g.snapshot());
        let mut matched: Vec<(u32, String, String)> = Vec::new();
        for (pid, process) in self.system.processes() {
            if Some(*pid) == self.own_pid || process.thread_kind().is_some() {
                continue;
            }
            let comm = process.name().to_string_lossy();
            let command_line = process
                .cmd()
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(pattern) = self.matching_pattern(&comm, &command_line) {
                let first_arg = process.cmd().first().map(|a| a.to_string_lossy());
                matched.push((
                    pid.as_u32(),
                    pattern.to_string(),
                    display_name(&comm, first_arg.as_deref()),
                ));
            }
        }
        matched.sort_by_key(|(pid, _, _)| *pid);
        for (pid, pattern, name) in matched {
            let Some(process) = self.system.process(Pid::from_u32(pid)) else {
                continue;
            };
            let mut fields = named([
                ("cpu_usage", float(f64::from(process.cpu_usage()))),
                ("memory_rss", integer(process.memory())),
                ("memory_vms", integer(process.virtual_memory())),
            ]);
            let status_path = self.proc_root.join(pid.to_string()).join("status");
            if let Some(threads) = std::fs::read_to_string(status_path)
                .ok()
                .and_then(|s| super::procfs::parse_threads(&s))
            {
                fields.extend(named([("num_threads", integer(threads))]));
            }
            if let Some(fds) = process.open_files() {
                fields.extend(named([("num_fds", integer(fds as u64))]));
            }
            if let Some(bytes) = gpu_memory.as_ref().and_then(|m| m.get(&pid)) {
                fields.extend(named([("gpu_memory_used", integer(*bytes))]));
            }
            let pid_text = pid.to_string();
            push_point(
                batch,
                "procstat",
                &[
                    ("host", ctx.host),
                    ("pattern", &pattern),
                    ("pid", &pid_text),
                    ("process_name", &name),
                ],
                fields,
                ctx.timestamp_ns,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_pattern_is_an_error_naming_it() {
        let options = ProcessOptions {
            patterns: vec!["vllm".into(), "(unclosed".into()],
            ..ProcessOptions::default()
        };
        let err = ProcessSampler::new(options).err().unwrap().to_string();
        assert!(err.contains("(unclosed"), "{err}");
    }

    #[test]
    fn patterns_match_the_name_or_the_command_line_first_pattern_wins() {
        let sampler = ProcessSampler::new(ProcessOptions::default()).unwrap();
        assert_eq!(
            sampler.matching_pattern("llama-server", "llama-server -m x.gguf"),
            Some("llama-server")
        );
        assert_eq!(
            sampler.matching_pattern("python3", "python3 -m vllm.entrypoints.openai.api_server"),
            Some("vllm")
        );
        assert_eq!(sampler.matching_pattern("bash", "bash -l"), None);
    }

    #[test]
    fn names_cut_by_the_kernel_are_restored_from_the_program_path() {
        assert_eq!(
            display_name(
                "text-generation",
                Some("/usr/local/bin/text-generation-launcher")
            ),
            "text-generation-launcher"
        );
        assert_eq!(display_name("ollama", Some("/usr/bin/ollama")), "ollama");
        assert_eq!(
            display_name("text-generation", Some("python3")),
            "text-generation"
        );
    }
}
