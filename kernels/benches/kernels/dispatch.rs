//! Host cost of recording ops: 200 chained element-wise adds on 256 floats, timed from the first
//! call to the last return, without the GPU's work (flushed and waited for outside the clock).
//! Small networks are launch-bound, so this per-op cost bounds a training step from below on
//! any adapter; criterion's elements/s reads as dispatches recorded per second.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use oddity_kernels::elementwise::add;
use oddity_kernels::Tensor;

const OPS: usize = 200;

pub fn benches(c: &mut Criterion, ctx: &oddity_kernels::Context) {
    let a = Tensor::from_slice(ctx, &[256], &vec![0.5f32; 256]).expect("a");
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(OPS as u64));
    group.bench_function("record_200_adds", |bench| {
        bench.iter_custom(|iters| {
            let mut recording = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut x = a.clone();
                for _ in 0..OPS {
                    x = add(&x, &a).expect("add");
                }
                recording += start.elapsed();
                drop(x);
                ctx.wait().expect("wait");
            }
            recording
        })
    });
    group.finish();
}
