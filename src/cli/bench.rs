//! `oddity bench`: the step times of [`crate::workloads`] (the same workloads as
//! `cargo bench --bench steps` and `benches/torch/steps.py`): warm-up steps, then the median of
//! `--steps` steps, each waited for, as one table with the adapter's name; `--json` writes the
//! samples for `benches/torch/compare.py`. `--profile` adds a per-kernel breakdown of one step,
//! timed with GPU timestamp queries where the adapter has them (host wall-clock per dispatch
//! otherwise; see `oddity_kernels::profile`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::kernels::profile::{self, ProfileClock};
use crate::kernels::Context;
use crate::workloads::{self, Timing};

#[derive(Debug, Args, Clone, Serialize)]
pub struct BenchArgs {
    /// `all`, a workload name (every batch size) or `name/batch`; commas join several.
    #[arg(long, default_value = "all")]
    pub workload: String,
    /// Timed steps per workload; the table reports their median.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps first (pipeline compilation, buffer pool, caches).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Also print a per-kernel time breakdown of one step of each workload.
    #[arg(long)]
    pub profile: bool,
    /// Write the results (adapter, settings, every sample) as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seed of the weights and inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Free text stored in the JSON and printed (e.g. "shared machine, indicative").
    #[arg(long)]
    pub note: Option<String>,
}

/// One row of the JSON report.
#[derive(Debug, Serialize)]
struct Row {
    workload: String,
    batch: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    images_per_s: f64,
    samples_ms: Vec<f64>,
    /// Median time to record and submit a step, before waiting for the GPU.
    host_median_ms: f64,
    /// Kernel dispatches one step records.
    dispatches_per_step: u64,
    /// (kernel, dispatches, total ms) of one profiled step, slowest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Vec<(String, usize, f64)>>,
}

#[derive(Debug, Serialize)]
struct Report {
    framework: &'static str,
    device: String,
    /// The kernel family that ran (`cpu` or `gpu`; `ODDITY_KERNELS` can force either).
    kernels: &'static str,
    host_threads: usize,
    warmup: usize,
    steps: usize,
    seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_clock: Option<String>,
    results: Vec<Row>,
}

pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<()> {
    let chosen = workloads::select(&args.workload)?;
    if args.steps == 0 {
        return Err(Error::InvalidArgument("--steps must be at least 1".into()));
    }
    let ctx = if args.profile { Context::new_profiled()? } else { Context::new()? };
    let io = |e| Error::io("<stdout>", e);
    let host_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    writeln!(out, "oddity bench on adapter: {}", ctx.adapter_name()).map_err(io)?;
    writeln!(
        out,
        "host threads: {host_threads}; {} kernels; warm-up {} steps, median of {} steps, seed {}",
        ctx.kernel_family(),
        args.warmup,
        args.steps,
        args.seed
    )
    .map_err(io)?;
    if let Some(note) = &args.note {
        writeln!(out, "note: {note}").map_err(io)?;
    }
    writeln!(
        out,
        "{:<22} {:>6} {:>16} {:>12} {:>12} {:>11}",
        "workload", "batch", "median ms/step", "images/s", "host ms", "dispatches"
    )
    .map_err(io)?;
    let mut rows = Vec::new();
    let mut clock_used = None;
    for w in &chosen {
        let mut step = w.prepare(&ctx, args.seed)?;
        let timing: Timing = workloads::time_steps(&ctx, step.as_mut(), w.batch, args.warmup, args.steps)?;
        writeln!(
            out,
            "{:<22} {:>6} {:>16.3} {:>12.1} {:>12.3} {:>11}",
            w.name,
            w.batch,
            timing.median_ms(),
            timing.images_per_s(),
            timing.median_host_ms(),
            timing.dispatches
        )
        .map_err(io)?;
        let profile = if args.profile {
            let clock = ctx.begin_profile()?;
            step.step()?;
            let records = ctx.end_profile()?;
            clock_used = Some(clock);
            let table: Vec<(String, usize, f64)> =
                profile::by_kernel(&records).into_iter().map(|(k, n, ns)| (k.to_string(), n, ns / 1e6)).collect();
            print_profile(out, &w.id(), clock, &table, timing.median_ms())?;
            Some(table)
        } else {
            None
        };
        rows.push(Row {
            workload: w.name.to_string(),
            batch: w.batch,
            median_ms: timing.median_ms(),
            min_ms: timing.min_ms(),
            max_ms: timing.max_ms(),
            images_per_s: timing.images_per_s(),
            samples_ms: timing.samples_ms.clone(),
            host_median_ms: timing.median_host_ms(),
            dispatches_per_step: timing.dispatches,
            profile,
        });
        // Free this workload's buffers before the next one is built.
        drop(step);
        ctx.wait()?;
    }
    if let Some(path) = &args.json {
        let report = Report {
            framework: "oddity",
            device: ctx.adapter_name().to_string(),
            kernels: ctx.kernel_family(),
            host_threads,
            warmup: args.warmup,
            steps: args.steps,
            seed: args.seed,
            note: args.note.clone(),
            profile_clock: clock_used.map(|c| format!("{c:?}")),
            results: rows,
        };
        let json = serde_json::to_string_pretty(&report).map_err(|e| Error::InvalidArgument(format!("bench report: {e}")))?;
        crate::checkpoint::write_atomically(path, json.as_bytes())?;
        writeln!(out, "wrote {}", path.display()).map_err(io)?;
    }
    Ok(())
}

fn print_profile(out: &mut dyn Write, id: &str, clock: ProfileClock, table: &[(String, usize, f64)], median_ms: f64) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    let total: f64 = table.iter().map(|r| r.2).sum();
    writeln!(out, "  profile of one {id} step:").map_err(io)?;
    match clock {
        ProfileClock::GpuTimestamps => writeln!(out, "  (GPU timestamp queries around each dispatch's compute pass)").map_err(io)?,
        ProfileClock::CpuWallClock => writeln!(
            out,
            "  NOTE: this adapter has no timestamp queries; times are host wall-clock of each dispatch \
             submitted and waited for alone (includes per-submit overhead; ranks kernels, does not add up to the step)"
        )
        .map_err(io)?,
    }
    writeln!(out, "  {:<28} {:>10} {:>12} {:>7}", "kernel", "dispatches", "total ms", "%").map_err(io)?;
    for (kernel, n, ms) in table {
        let pct = if total > 0.0 { 100.0 * ms / total } else { 0.0 };
        writeln!(out, "  {kernel:<28} {n:>10} {ms:>12.3} {pct:>6.1}%").map_err(io)?;
    }
    writeln!(out, "  sum of kernels {total:.3} ms; median step {median_ms:.3} ms (the rest: host recording, copies, submit)")
        .map_err(io)?;
    Ok(())
}
