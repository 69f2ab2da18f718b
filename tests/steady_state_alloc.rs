//! A steady-state training step allocates no new GPU buffer: after warm-up steps, the buffer
//! pool serves every tensor of a step (activations, gradients, Adam moments, batch-norm
//! statistics) from buffers freed by the step before.
//!
//! Each test opens its own context (tests run in parallel; the creation counter is per context)
//! and runs the same step code as `oddity bench` (`oddity::workloads`), at small batches.

use oddity::kernels::{gpu_or_skip, Context};
use oddity::workloads::{Kind, TrainStep, Workload};

fn own_context() -> Context {
    Context::with_limits(oddity::kernels::wgpu::Limits::default()).unwrap()
}

/// Runs `warmup` steps, then `steps` more, and returns the buffers created during the latter.
/// Also checks that the measured steps after the first create no bind group: once a step finds
/// the same idle buffers as the step before (it created none), the pool hands out the same
/// buffers, so the bind-group cache (keyed by buffer id) serves every dispatch.
fn buffers_created_after_warmup(ctx: &Context, step: &mut dyn TrainStep, warmup: usize, steps: usize) -> u64 {
    assert!(steps >= 2, "the bind-group check needs two measured steps");
    for _ in 0..warmup {
        step.step().unwrap();
        ctx.wait().unwrap();
    }
    let before = ctx.buffers_created();
    assert!(before > 0, "the warm-up steps must have created buffers");
    let mut groups = 0;
    for i in 0..steps {
        step.step().unwrap();
        ctx.wait().unwrap();
        if i == 0 {
            groups = ctx.bind_groups_created();
            assert!(groups > 0, "the steps must have created bind groups");
        }
    }
    assert_eq!(ctx.bind_groups_created(), groups, "a repeated step created bind groups");
    ctx.buffers_created() - before
}

#[test]
fn lenet_svdd_step_allocates_nothing_after_warmup() {
    gpu_or_skip!();
    let ctx = own_context();
    let w = Workload { name: "fmnist_lenet_svdd", batch: 16, kind: Kind::FmnistLenetSvdd };
    let mut step = w.prepare(&ctx, 3).unwrap();
    // Step 1 creates the Adam moments, step 2 is the first with every buffer already pooled.
    assert_eq!(buffers_created_after_warmup(&ctx, step.as_mut(), 2, 3), 0);
}

#[test]
fn mlsad_detector_map_step_allocates_nothing_after_warmup() {
    gpu_or_skip!();
    let ctx = own_context();
    // The map model: per-patch logits, dropout and input-noise masks drawn every step.
    let w = Workload { name: "mlsad_detector8", batch: 2, kind: Kind::MlsadDetector8 };
    let mut step = w.prepare(&ctx, 4).unwrap();
    // Three warm-up steps: the weight gradients' padded copies of x and gy (25-wide rows padded
    // to multiples of 4) make the pool's size classes settle one step later (measured: 99, 9, 1
    // new buffers in steps 1 to 3, then none in steps 4 to 8).
    assert_eq!(buffers_created_after_warmup(&ctx, step.as_mut(), 3, 3), 0);
}

#[test]
fn the_counter_sees_a_new_shape() {
    // Guards the two tests above against a counter that never moves.
    gpu_or_skip!();
    let ctx = own_context();
    let small = Workload { name: "fmnist_lenet_svdd", batch: 4, kind: Kind::FmnistLenetSvdd };
    let mut step = small.prepare(&ctx, 5).unwrap();
    step.step().unwrap();
    ctx.wait().unwrap();
    let before = ctx.buffers_created();
    let larger = Workload { batch: 64, ..small };
    let mut step = larger.prepare(&ctx, 5).unwrap();
    step.step().unwrap();
    ctx.wait().unwrap();
    assert!(ctx.buffers_created() > before, "a 16x larger batch needs larger buffers");
}
