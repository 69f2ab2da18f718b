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
        ("subgroup", MatmulVariant::Subgroup, false, false),
        ("subgroup_AT_BT", MatmulVariant::Subgroup, true, true),
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
}
