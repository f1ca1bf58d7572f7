//! What a worker declares about its machine ([`Hardware`]), detected rather than assumed:
//! the CPU model, its cores and the SIMD level the engine uses, any NVIDIA GPU the kernel
//! driver lists, and the memory. Flags and the node's TOML override each field.

use aik_kernel::Hardware;

/// The machine this process runs on, for a worker running `engine`.
///
/// `gpu_model` reads `cpu: <model> (<cores> cores, <simd>)`, followed by `; gpu: <names>` when
/// the NVIDIA driver lists GPUs (the engine itself runs on the CPU); `memory_mb` is the
/// machine's total memory (`MemTotal`), the most a model can use.
pub fn detect(engine: &str) -> Hardware {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let simd = aik_infer::Backend::detect().name();
    let mut gpu_model = format!("cpu: {} ({cores} cores, {simd})", cpu_model(&cpuinfo));
    let gpus = nvidia_gpus();
    if !gpus.is_empty() {
        gpu_model.push_str(&format!("; gpu: {}", gpus.join(", ")));
    }
    Hardware { gpu_model, memory_mb: total_memory_mb(&meminfo), engine: engine.to_owned() }
}

/// The `model name` of `/proc/cpuinfo` (x86), else its `Hardware`/`CPU part` lines (ARM).
fn cpu_model(cpuinfo: &str) -> String {
    ["model name", "Hardware", "Model"]
        .iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name.trim() == *key && !value.trim().is_empty()).then(|| value.trim().to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

/// `MemTotal` of `/proc/meminfo`, in MiB (0 when unknown).
fn total_memory_mb(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// The models of the GPUs the NVIDIA kernel driver lists.
fn nvidia_gpus() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") else { return Vec::new() };
    let mut gpus: Vec<String> = entries
        .filter_map(|entry| {
            let info = std::fs::read_to_string(entry.ok()?.path().join("information")).ok()?;
            info.lines().find_map(|line| line.strip_prefix("Model:").map(|m| m.trim().to_owned()))
        })
        .collect();
    gpus.sort();
    gpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_and_memory_lines() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n";
        assert_eq!(cpu_model(cpuinfo), "AMD EPYC 7B13");
        assert_eq!(cpu_model("processor : 0\nHardware : BCM2835\n"), "BCM2835");
        assert_eq!(cpu_model(""), std::env::consts::ARCH);
        assert_eq!(total_memory_mb("MemTotal:       24567892 kB\nMemFree: 1 kB\n"), 23992);
        assert_eq!(total_memory_mb(""), 0);
    }

    #[test]
    fn this_machine_is_described() {
        let hardware = detect("llama-gguf/1");
        assert!(hardware.gpu_model.starts_with("cpu: "), "{}", hardware.gpu_model);
        assert!(hardware.gpu_model.contains(" cores, "), "{}", hardware.gpu_model);
        // Linux always has /proc/meminfo; these machines have gigabytes.
        assert!(hardware.memory_mb > 512, "{}", hardware.memory_mb);
        assert_eq!(hardware.engine, "llama-gguf/1");
    }
}
