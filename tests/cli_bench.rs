//! `oddity bench`: the table, the JSON report `benches/torch/compare.py` reads (step samples, the
//! host's part of a step, the seed), the per-kernel profile, and named errors for bad arguments;
//! and `oddity info`, which names the adapter and the features the speed depends on.

mod common;

use serde_json::Value;
use std::process::{Command, Output};

fn oddity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oddity")).args(args).output().expect("running oddity")
}

#[test]
fn bench_reports_steps_host_time_and_profile() {
    let dir = common::scratch_dir("cli_bench");
    let json = dir.join("bench.json");
    let out = oddity(&[
        "bench",
        "--workload",
        "fmnist_lenet_svdd/128",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--seed",
        "7",
        "--profile",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("oddity bench on adapter: "), "{stdout}");
    assert!(stdout.contains("host ms"), "{stdout}");
    assert!(stdout.contains("conv2d."), "the profile names conv kernels: {stdout}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["framework"], "oddity");
    assert_eq!(report["seed"], 7);
    let family = report["kernels"].as_str().unwrap();
    assert!(family == "cpu" || family == "gpu", "{family}");
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["workload"], "fmnist_lenet_svdd");
    assert_eq!(row["batch"], 128);
    let samples: Vec<f64> = row["samples_ms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(samples.len(), 3);
    assert!(samples.iter().all(|&s| s > 0.0), "{samples:?}");
    let (median, host) = (row["median_ms"].as_f64().unwrap(), row["host_median_ms"].as_f64().unwrap());
    // Each step's host part ends before its wait does, so the medians keep that order.
    assert!(host > 0.0 && host <= median, "host {host} ms, step {median} ms");
    let profile = row["profile"].as_array().unwrap();
    assert!(profile.iter().any(|k| k[0].as_str().unwrap().starts_with("conv2d.")), "{profile:?}");
    assert!(profile.iter().all(|k| k[1].as_u64().unwrap() >= 1 && k[2].as_f64().unwrap() >= 0.0), "{profile:?}");
    // Every step records the same ops: the profiled step's dispatches are the timed step's.
    let profiled: u64 = profile.iter().map(|k| k[1].as_u64().unwrap()).sum();
    assert_eq!(row["dispatches_per_step"].as_u64().unwrap(), profiled, "{profile:?}");
}

/// `ODDITY_KERNELS=gpu` on any adapter runs the GPU family: the tiled implicit-GEMM conv, never
/// the CPU-tuned register kernels, so the GPU path's dispatches can be traced without a GPU.
#[test]
fn bench_runs_the_kernel_family_asked_for() {
    let run = |family: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_oddity"))
            .args(["bench", "--workload", "fmnist_lenet_svdd/128", "--steps", "1", "--warmup", "0", "--profile"])
            .env("ODDITY_KERNELS", family)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("; {family} kernels;")), "{stdout}");
        stdout
    };
    let gpu = run("gpu");
    assert!(gpu.contains("conv2d.gemm_tiled"), "{gpu}");
    assert!(!gpu.contains("conv2d.direct_reg") && !gpu.contains("conv2d.wgrad_reg"), "{gpu}");
    let cpu = run("cpu");
    assert!(cpu.contains("conv2d.direct_reg") && !cpu.contains("conv2d.gemm_tiled"), "{cpu}");
}

#[test]
fn bench_names_bad_arguments() {
    let out = oddity(&["bench", "--workload", "fmnist_lenet_svdd/128", "--steps", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--steps"), "{err}");

    let out = oddity(&["bench", "--workload", "no_such_workload", "--steps", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no_such_workload"), "{err}");
}

#[test]
fn info_names_the_adapter_and_the_features_kernels_pick_by() {
    let out = oddity(&["info"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = |key: &str| {
        stdout.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no '{key}' line in:\n{stdout}")).to_string()
    };
    let adapter = line("adapter: ");
    for key in ["timestamp queries: ", "shader f16: "] {
        line(key);
    }
    // Auto variants follow the adapter's type unless ODDITY_KERNELS says otherwise.
    let software = line("software adapter: ") == "software adapter: true";
    let family = line("kernel family: ");
    assert!(family.starts_with(if software { "kernel family: cpu" } else { "kernel family: gpu" }), "{stdout}");
    let forced = Command::new(env!("CARGO_BIN_EXE_oddity")).arg("info").env("ODDITY_KERNELS", "gpu").output().unwrap();
    let forced = String::from_utf8_lossy(&forced.stdout);
    assert!(forced.contains("kernel family: gpu"), "{forced}");
    assert!(forced.contains(&format!("software adapter: {software}")), "the adapter's own type stays: {forced}");
    let bad = Command::new(env!("CARGO_BIN_EXE_oddity")).arg("info").env("ODDITY_KERNELS", "tpu").output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ODDITY_KERNELS=\"tpu\""), "{bad:?}");
    let subgroups = line("subgroups: ");
    // lavapipe (Mesa 22, 256-bit) offers subgroups of 8 lanes, which its matmul and conv kernels use.
    if adapter.contains("llvmpipe") && adapter.contains("Vulkan") {
        assert_eq!(subgroups, "subgroups: yes, at least 8 lanes", "{stdout}");
    } else {
        assert!(subgroups == "subgroups: no" || subgroups.starts_with("subgroups: yes, at least "), "{stdout}");
    }
}
