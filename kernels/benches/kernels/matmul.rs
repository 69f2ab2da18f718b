//! Matmul 512x512x512 in GFLOP/s (throughput elements = 2*M*N*K floating-point operations), for
//! the kernel the adapter picks and for both variants forced, plain and with transposed operands.

use criterion::{BenchmarkId, Criterion, Throughput};
use oddity_kernels::matmul::{matmul_with, MatmulVariant};
use oddity_kernels::{Context, Tensor};

pub fn benches(c: &mut Criterion, ctx: &Context) {
    let (m, n, k) = (512usize, 512usize, 512usize);
    let flop = 2 * m * n * k;
    // Values in [-1, 1) from a fixed pattern: the data never changes the work done.
    let fill = |len: usize| -> Vec<f32> { (0..len).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect() };
    let a = Tensor::from_slice(ctx, &[m, k], &fill(m * k)).expect("upload A");
    let b = Tensor::from_slice(ctx, &[k, n], &fill(k * n)).expect("upload B");
    // Short group name: criterion truncates long ids; the harness prints the adapter.
    let mut group = c.benchmark_group("matmul_512");
    group.throughput(Throughput::Elements(flop as u64));
    let cases = [
        ("auto", MatmulVariant::Auto, false, false),
        ("registers", MatmulVariant::Registers, false, false),
        ("registers_AT_BT", MatmulVariant::Registers, true, true),
        ("tiled", MatmulVariant::Tiled, false, false),
    ];
    for (name, variant, ta, tb) in cases {
        group.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                let out = matmul_with(&a, &b, ta, tb, variant).expect("matmul");
                // Submit and block until the GPU is done, so the time is the kernel's.
                ctx.wait().expect("wait");
                out
            })
        });
    }
    group.finish();
    if ctx.is_cpu_adapter() {
        cpu_time_report(ctx, &a, &b, flop);
    }
}

/// On a software adapter the "GPU" is this process's driver threads, and on a shared machine
/// wall time counts other processes' load. GFLOP per CPU-second of this process, times the
/// cores the driver can use, is what the kernel reaches on an idle machine (assuming it scales
/// across cores, which lavapipe's per-workgroup threads do for 64 workgroups).
fn cpu_time_report(ctx: &Context, a: &Tensor, b: &Tensor, flop: usize) {
    let Some(start) = cpu_seconds() else { return };
    let reps = 20;
    for _ in 0..reps {
        let _ = matmul_with(a, b, false, false, MatmulVariant::Auto).expect("matmul");
        ctx.wait().expect("wait");
    }
    let Some(end) = cpu_seconds() else { return };
    let per_cpu_second = (flop * reps) as f64 / (end - start) / 1e9;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "matmul_512/auto: {per_cpu_second:.2} GFLOP per CPU-second of this process; x {cores} cores = {:.1} GFLOP/s on an idle machine",
        per_cpu_second * cores as f64
    );
}

/// User + system CPU time of this process (Linux `/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
