//! `cargo bench --bench kernels`: GFLOP/s of the heavy kernels on whatever adapter is found.
//! Each group prints the adapter name; criterion's throughput is in elements = FLOPs, so its
//! "Kelem/s" / "Melem/s" / "Gelem/s" reads as FLOP/s.

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "kernels/conv.rs"]
mod conv;
#[path = "kernels/dispatch.rs"]
mod dispatch;
#[path = "kernels/matmul.rs"]
mod matmul;

fn context() -> oddity_kernels::Context {
    let ctx = oddity_kernels::Context::new().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("adapter: {}", ctx.adapter_name());
    ctx
}

fn all(c: &mut Criterion) {
    let ctx = context();
    matmul::benches(c, &ctx);
    conv::benches(c, &ctx);
    dispatch::benches(c, &ctx);
}

criterion_group! {
    name = kernels;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500));
    targets = all
}
criterion_main!(kernels);
