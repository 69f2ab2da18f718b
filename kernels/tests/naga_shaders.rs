//! Validates every `shaders/*.wgsl` with naga (no device needed) and translates each compute entry
//! point to SPIR-V (Vulkan), MSL (Metal), HLSL (DX12) and GLSL ES 3.1 (GL). This is the
//! portability check for backends this machine has no GPU for.
//!
//! Modules are built as the kernel modules build them: `X_loads.wgsl` is appended to `X.wgsl`
//! (the plain module), and `X_subgroup.wgsl` to `X.wgsl` in place of it (the module for devices
//! with `wgpu::Features::SUBGROUP`, validated with naga's subgroup capability and translated to the
//! backends that have subgroups: not GLSL ES, whose wgpu backend offers none).

use std::path::PathBuf;

use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn shader_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shader_validates_and_translates_to_all_backends() {
    let files = shader_files();
    assert!(!files.is_empty(), "no shaders found");
    let mut failures = Vec::new();
    let mut entry_points = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with("_loads.wgsl") {
            continue; // a part of its op's plain module
        }
        let subgroup = name.ends_with("_subgroup.wgsl");
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let source = if subgroup {
            let base = path.with_file_name(name.replace("_subgroup.wgsl", ".wgsl"));
            if base.exists() { read(&base) + &read(path) } else { read(path) }
        } else {
            let loads = path.with_file_name(name.replace(".wgsl", "_loads.wgsl"));
            if loads.exists() { read(path) + &read(&loads) } else { read(path) }
        };
        let module = match naga::front::wgsl::parse_str(&source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: parse: {}", e.emit_to_string(&source)));
                continue;
            }
        };
        // The WebGPU baseline: no optional capabilities (subgroups for the subgroup files).
        let caps = if subgroup { Capabilities::SUBGROUP } else { Capabilities::empty() };
        let info = match Validator::new(ValidationFlags::all(), caps).validate(&module) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: validate: {}", e.emit_to_string(&source)));
                continue;
            }
        };
        if let Err(e) = spv::write_vec(&module, &info, &spv::Options::default(), None) {
            failures.push(format!("{name}: SPIR-V: {e}"));
        }
        for ep in &module.entry_points {
            entry_points += 1;
            let stage = ep.stage;
            let msl_pipeline = msl::PipelineOptions { entry_point: Some((stage, ep.name.clone())), ..Default::default() };
            if let Err(e) = msl::write_string(&module, &info, &msl::Options::default(), &msl_pipeline) {
                failures.push(format!("{name}::{}: MSL: {e}", ep.name));
            }
            let hlsl_options = hlsl::Options::default();
            let hlsl_pipeline = hlsl::PipelineOptions { entry_point: Some((stage, ep.name.clone())) };
            let mut hlsl_out = String::new();
            if let Err(e) = hlsl::Writer::new(&mut hlsl_out, &hlsl_options, &hlsl_pipeline).write(&module, &info, None) {
                failures.push(format!("{name}::{}: HLSL: {e}", ep.name));
            }
            if subgroup {
                continue;
            }
            let glsl_options = glsl::Options {
                version: glsl::Version::Embedded { version: 310, is_webgl: false },
                ..Default::default()
            };
            let glsl_pipeline =
                glsl::PipelineOptions { shader_stage: stage, entry_point: ep.name.clone(), multiview: None };
            let mut glsl_out = String::new();
            let result = glsl::Writer::new(
                &mut glsl_out,
                &module,
                &info,
                &glsl_options,
                &glsl_pipeline,
                naga::proc::BoundsCheckPolicies::default(),
            )
            .and_then(|mut w| w.write());
            if let Err(e) = result {
                failures.push(format!("{name}::{}: GLSL: {e}", ep.name));
            }
        }
    }
    assert!(failures.is_empty(), "shader portability failures:\n{}", failures.join("\n"));
    eprintln!("{} shader files, {entry_points} entry points: SPIR-V, MSL, HLSL and GLSL ES 3.1 all written", files.len());
}
