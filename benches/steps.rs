//! `cargo bench --bench steps`: one full training step (forward, loss, backward, Adam) of every
//! workload of issue 10, waiting for the GPU at the end of each iteration, so a time is the
//! step's real time; criterion's throughput line is images/s. The workloads (networks, losses,
//! optimiser settings, batch sizes) come from `oddity::workloads`, shared with `oddity bench`
//! and mirrored by `benches/torch/steps.py`; the MLSAD level-8 detector there is a stand-in built
//! from the paper's description until `src/mlsad` lands (see `workloads::mlsad_detector8`).
//!
//! `cargo bench --bench steps -- mlsad` runs the matching workloads only (criterion's filter).
//! For a machine without a Rust toolchain, `oddity bench` is the same measurement as a binary.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oddity::kernels::Context;
use oddity::workloads;

fn steps(c: &mut Criterion) {
    let ctx = Context::new().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("adapter: {}", ctx.adapter_name());
    let mut group = c.benchmark_group("step");
    for w in workloads::all() {
        let mut step = w.prepare(&ctx, 0).unwrap_or_else(|e| panic!("{}: {e}", w.id()));
        group.throughput(Throughput::Elements(w.batch as u64));
        group.bench_function(w.id(), |b| {
            b.iter(|| {
                step.step().unwrap();
                ctx.wait().unwrap();
            })
        });
        drop(step);
        ctx.wait().unwrap();
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Steps of the 256x256 workloads take seconds on software adapters: few samples.
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_secs(1));
    targets = steps
}
criterion_main!(benches);
