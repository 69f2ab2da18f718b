//! conv2d forward, backward-data and backward-weight at the shapes oddity's networks use.
//! Throughput is FLOPs (2 * N * outC * outH * outW * inC * kh * kw per pass), so criterion's
//! elements/s reads as FLOP/s. Every iteration waits for the GPU. Every kernel variant runs on
//! every adapter (`registers/`, `subgroup/`, `tiled/`, `tiled_wide/`): `Variant::Auto` picks the
//! subgroup register kernels on CPU adapters and tiled on GPUs, and the others show what that
//! choice is worth; `tiled_wide` forces the 8 x 8 tiles that `tiled` takes on big layers only.

use criterion::{Criterion, Throughput};
use oddity_kernels::conv2d::{conv2d, conv2d_backward_data, conv2d_backward_weight, Conv2dParams, Variant};
use oddity_kernels::Tensor;

struct Case {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dParams,
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5).collect()
}

pub fn benches(c: &mut Criterion, ctx: &oddity_kernels::Context) {
    let cases = [
        Case { name: "128x1x28x28_to_8_5x5_pad2", x: [128, 1, 28, 28], w: [8, 1, 5, 5], p: Conv2dParams::new([1, 1], [2, 2], [1, 1]) },
        Case { name: "128x3x32x32_to_32_5x5_pad2", x: [128, 3, 32, 32], w: [32, 3, 5, 5], p: Conv2dParams::new([1, 1], [2, 2], [1, 1]) },
        Case { name: "128x32x16x16_to_64_5x5_pad2", x: [128, 32, 16, 16], w: [64, 32, 5, 5], p: Conv2dParams::new([1, 1], [2, 2], [1, 1]) },
        Case { name: "32x1x256x256_to_32_4x4_s2_pad1", x: [32, 1, 256, 256], w: [32, 1, 4, 4], p: Conv2dParams::new([2, 2], [1, 1], [1, 1]) },
        // The MLSAD level-8 detector's 1x1 layers (a plain GEMM in disguise).
        Case { name: "8x512x25x25_to_256_1x1", x: [8, 512, 25, 25], w: [256, 512, 1, 1], p: Conv2dParams::new([1, 1], [0, 0], [1, 1]) },
    ];
    let mut group = c.benchmark_group("conv2d");
    for case in &cases {
        let x = Tensor::from_slice(ctx, &case.x, &values(case.x.iter().product(), 1)).expect("x");
        let w = Tensor::from_slice(ctx, &case.w, &values(case.w.iter().product(), 2)).expect("w");
        let b = Tensor::from_slice(ctx, &[case.w[0]], &values(case.w[0], 3)).expect("bias");
        let y = conv2d(&x, &w, Some(&b), &case.p).expect("conv2d");
        let gy = Tensor::from_slice(ctx, y.shape(), &values(y.numel(), 4)).expect("gy");
        let [_, out_c, oh, ow] = [y.shape()[0], y.shape()[1], y.shape()[2], y.shape()[3]];
        let flops = 2 * case.x[0] * out_c * oh * ow * case.x[1] * case.w[2] * case.w[3];
        group.throughput(Throughput::Elements(flops as u64));
        for (label, variant) in [("registers", Variant::Registers), ("subgroup", Variant::Subgroup), ("tiled", Variant::Tiled), ("tiled_wide", Variant::TiledWide)] {
            let p = case.p.with_variant(variant);
            group.bench_function(format!("forward/{label}/{}", case.name), |bench| {
                bench.iter(|| {
                    let y = conv2d(&x, &w, Some(&b), &p).expect("conv2d");
                    ctx.wait().expect("wait");
                    y
                })
            });
            group.bench_function(format!("backward_data/{label}/{}", case.name), |bench| {
                bench.iter(|| {
                    let gx = conv2d_backward_data(&gy, &w, &case.x, &p).expect("backward-data");
                    ctx.wait().expect("wait");
                    gx
                })
            });
            group.bench_function(format!("backward_weight/{label}/{}", case.name), |bench| {
                bench.iter(|| {
                    let gw = conv2d_backward_weight(&x, &gy, &case.w, &p).expect("backward-weight");
                    ctx.wait().expect("wait");
                    gw
                })
            });
        }
    }
    group.finish();
}
