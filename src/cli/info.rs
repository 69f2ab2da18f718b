//! `oddity info`: which adapter oddity would use, and the device limits that matter to it.

use std::io::Write;

use clap::Args;

use crate::error::{Error, Result};
use crate::kernels::wgpu;
use crate::kernels::Context;

/// Arguments of `oddity info` (none yet: the adapter follows ODDITY_BACKEND and ODDITY_ADAPTER).
#[derive(Debug, Args)]
pub struct InfoArgs {}

pub fn run(_args: &InfoArgs, out: &mut dyn Write) -> Result<()> {
    let ctx = Context::new()?;
    let limits = ctx.device().limits();
    let io = |e| Error::io("<stdout>", e);
    writeln!(out, "adapter: {}", ctx.adapter_name()).map_err(io)?;
    writeln!(out, "software adapter: {}", ctx.device_type() == Some(wgpu::DeviceType::Cpu)).map_err(io)?;
    writeln!(out, "kernel family: {} (ODDITY_KERNELS=cpu|gpu overrides)", ctx.kernel_family()).map_err(io)?;
    writeln!(out, "max storage binding: {} MiB", ctx.max_binding_bytes() >> 20).map_err(io)?;
    writeln!(out, "max workgroup storage: {} KiB", limits.max_compute_workgroup_storage_size >> 10).map_err(io)?;
    writeln!(out, "max invocations per workgroup: {}", limits.max_compute_invocations_per_workgroup).map_err(io)?;
    // What the adapter could enable (oddity asks for timestamp queries only when profiling).
    let features = ctx.adapter_features();
    let has = |f: wgpu::Features| if features.contains(f) { "yes" } else { "no" };
    writeln!(out, "timestamp queries: {}", has(wgpu::Features::TIMESTAMP_QUERY)).map_err(io)?;
    writeln!(out, "shader f16: {}", has(wgpu::Features::SHADER_F16)).map_err(io)?;
    // Enabled where offered: the CPU-tuned kernels share loads across a subgroup's lanes.
    match ctx.subgroup_min_lanes() {
        Some(lanes) => writeln!(out, "subgroups: yes, at least {lanes} lanes").map_err(io)?,
        None => writeln!(out, "subgroups: no").map_err(io)?,
    }
    Ok(())
}
