//! Profiling (timestamp queries or the wall-clock fallback) and the pool's creation counter.

use oddity_kernels::elementwise::{self, Unary};
use oddity_kernels::profile::{self, ProfileClock};
use oddity_kernels::testing::TestRng;
use oddity_kernels::{gpu_or_skip, Context, Tensor};

/// Records `n` rounds of three elementwise ops and returns the result.
fn chain(ctx: &Context, n: usize) -> Tensor {
    let mut rng = TestRng::new(7);
    let data: Vec<f32> = (0..37 * 53).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let mut x = Tensor::from_slice(ctx, &[37, 53], &data).unwrap();
    for _ in 0..n {
        x = elementwise::unary(&x, Unary::Tanh).unwrap();
        x = elementwise::add_scalar(&x, 0.5).unwrap();
        x = elementwise::add(&x, &x).unwrap();
    }
    x
}

fn own_context() -> Context {
    Context::with_limits(oddity_kernels::wgpu::Limits::default()).unwrap()
}

fn check_profile(ctx: &Context) {
    chain(ctx, 1); // compile the pipelines outside the profile
    ctx.wait().unwrap();
    let clock = ctx.begin_profile().unwrap();
    let before = ctx.dispatch_count();
    let unprofiled_result = chain(ctx, 4).to_vec().unwrap();
    let records = ctx.end_profile().unwrap();
    let dispatched = (ctx.dispatch_count() - before) as usize;
    eprintln!("clock {clock:?}, {} records for {dispatched} dispatches", records.len());
    assert_eq!(records.len(), dispatched, "one record per dispatch ({clock:?})");
    assert!(records.iter().all(|r| r.nanos.is_finite() && r.nanos >= 0.0));
    assert!(records.iter().any(|r| r.nanos > 0.0), "some kernel must take measurable time: {records:?}");
    let rows = profile::by_kernel(&records);
    assert!(rows.iter().all(|r| r.0.starts_with("elementwise.")), "only elementwise kernels ran: {rows:?}");
    assert_eq!(rows.iter().map(|r| r.1).sum::<usize>(), dispatched);
    // Profiling changes neither the dispatches nor the results.
    let before = ctx.dispatch_count();
    assert_eq!(unprofiled_result, chain(ctx, 4).to_vec().unwrap());
    assert_eq!((ctx.dispatch_count() - before) as usize, dispatched);
    // Profiling is off again.
    assert!(ctx.end_profile().is_err());
}

#[test]
fn profile_times_every_dispatch_on_the_available_clock() {
    gpu_or_skip!();
    // Own contexts: tests run in parallel and the counters and the profiler are per context.
    // A context opened without new_profiled asks for no features: the wall-clock fallback.
    check_profile(&own_context());
    let profiled = Context::new_profiled().unwrap();
    let has_ts = profiled.device().features().contains(oddity_kernels::wgpu::Features::TIMESTAMP_QUERY);
    eprintln!("adapter {} timestamp queries: {has_ts}", profiled.adapter_name());
    let clock = profiled.begin_profile().unwrap();
    assert_eq!(clock == ProfileClock::GpuTimestamps, has_ts);
    profiled.end_profile().unwrap();
    check_profile(&profiled);
}

#[test]
fn repeating_the_same_shapes_creates_no_buffers() {
    gpu_or_skip!();
    let ctx = own_context();
    let run = || {
        chain(&ctx, 3);
        ctx.wait().unwrap();
    };
    run();
    let created = ctx.buffers_created();
    assert!(created > 0);
    for _ in 0..3 {
        run();
    }
    assert_eq!(ctx.buffers_created(), created, "freed buffers must be reused after a submit");
}
