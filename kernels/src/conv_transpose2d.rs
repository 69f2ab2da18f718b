//! 2-D transposed convolution (NCHW, groups = 1) with PyTorch's `ConvTranspose2d` semantics:
//! forward, backward-data, backward-weight and bias gradient. CPU reference: [`cpu`].
//!
//! No shader of its own: conv_transpose2d is the adjoint of conv2d, so its forward is the
//! transposed map of `shaders/conv2d.wgsl` (conv2d's backward-data kernel), its backward-data is
//! the direct map (conv2d's forward kernel) and its weight gradient is conv2d's weight gradient
//! with the roles of x and gy exchanged. Both kernel variants are reused as they are.

use crate::conv2d::{bias_grad, direct, expect_f32_4d, transposed_map, weight_grad, Epilogue, Geom, Variant};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Stride, padding, output padding and dilation per axis (height, width), as PyTorch's
/// `ConvTranspose2d`. `output_padding` must be smaller than the stride or the dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub output_padding: [usize; 2],
    pub dilation: [usize; 2],
    pub variant: Variant,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams { stride: [1, 1], padding: [0, 0], output_padding: [0, 0], dilation: [1, 1], variant: Variant::Auto }
    }
}

impl ConvTranspose2dParams {
    pub fn new(stride: [usize; 2], padding: [usize; 2], output_padding: [usize; 2], dilation: [usize; 2]) -> Self {
        ConvTranspose2dParams { stride, padding, output_padding, dilation, variant: Variant::Auto }
    }

    /// Same parameters with a forced kernel variant.
    pub fn with_variant(self, variant: Variant) -> Self {
        ConvTranspose2dParams { variant, ..self }
    }
}

/// Output size of one axis: (in - 1)*s - 2p + d(k-1) + output_padding + 1, or None when not positive.
pub fn conv_transpose_out_size(input: usize, kernel: usize, stride: usize, padding: usize, output_padding: usize, dilation: usize) -> Option<usize> {
    let full = (input.checked_sub(1)? * stride + dilation * kernel.checked_sub(1)? + output_padding + 1) as i64;
    let out = full - 2 * padding as i64;
    (out > 0).then_some(out as usize)
}

/// Checks the parameters and returns the transposed map's geometry: source x [n, in_c, h, w],
/// destination y [n, out_c, oh, ow], weight [in_c, out_c, kh, kw].
fn geometry(op: &str, x_shape: &[usize], w_shape: &[usize], p: &ConvTranspose2dParams) -> Result<Geom> {
    if x_shape.len() != 4 || w_shape.len() != 4 {
        return Err(Error::Shape(format!("{op}: x {x_shape:?} and weight {w_shape:?} must both be 4-d")));
    }
    if p.stride.contains(&0) || p.dilation.contains(&0) {
        return Err(Error::Shape(format!("{op}: stride {:?} and dilation {:?} must be positive", p.stride, p.dilation)));
    }
    for a in 0..2 {
        if p.output_padding[a] >= p.stride[a] && p.output_padding[a] >= p.dilation[a] {
            return Err(Error::Shape(format!(
                "{op}: output_padding {:?} must be smaller than stride {:?} or dilation {:?}",
                p.output_padding, p.stride, p.dilation
            )));
        }
    }
    let [n, c_in, h, w] = [x_shape[0], x_shape[1], x_shape[2], x_shape[3]];
    let [wc_in, c_out, kh, kw] = [w_shape[0], w_shape[1], w_shape[2], w_shape[3]];
    if wc_in != c_in || c_out == 0 || kh == 0 || kw == 0 {
        return Err(Error::Shape(format!(
            "{op}: weight {w_shape:?} does not fit x {x_shape:?} (weight is [in_c = {c_in}, out_c, kh, kw])"
        )));
    }
    if [n, c_in, h, w].contains(&0) {
        return Err(Error::Shape(format!("{op}: x {x_shape:?} is empty")));
    }
    let oh = conv_transpose_out_size(h, kh, p.stride[0], p.padding[0], p.output_padding[0], p.dilation[0]);
    let ow = conv_transpose_out_size(w, kw, p.stride[1], p.padding[1], p.output_padding[1], p.dilation[1]);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return Err(Error::Shape(format!(
            "{op}: padding {:?} leaves no output for x {x_shape:?} and kernel {:?}",
            p.padding,
            [kh, kw]
        )));
    };
    Ok(Geom { n, cx: c_in, hx: h, wx: w, cy: c_out, hy: oh, wy: ow, k: [kh, kw], s: p.stride, p: p.padding, d: p.dilation })
}

fn expect_shape(t: &Tensor, want: &[usize], what: &str, op: &str) -> Result<()> {
    if t.shape() != want {
        return Err(Error::Shape(format!("{op}: {what} is {:?} but must be {want:?}", t.shape())));
    }
    Ok(())
}

/// y = conv_transpose2d(x, w) + bias.
/// x: [batch, in_c, height, width], w: [in_c, out_c, kh, kw], bias: [out_c];
/// returns [batch, out_c, out_h, out_w] with out = (in - 1)*s - 2p + d(k-1) + output_padding + 1.
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &ConvTranspose2dParams) -> Result<Tensor> {
    conv_transpose2d_fused(x, w, bias, Epilogue::Identity, p)
}

/// y = epilogue(conv_transpose2d(x, w) + bias) in one dispatch; shapes as [`conv_transpose2d`].
pub fn conv_transpose2d_fused(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, epi: Epilogue, p: &ConvTranspose2dParams) -> Result<Tensor> {
    let op = "conv_transpose2d";
    epi.check(op)?;
    expect_f32_4d(x, "x", op)?;
    expect_f32_4d(w, "weight", op)?;
    x.expect_same_context(w, op)?;
    let g = geometry(op, x.shape(), w.shape(), p)?;
    if let Some(b) = bias {
        expect_shape(b, &[g.cy], "bias", op)?;
        x.expect_same_context(b, op)?;
    }
    transposed_map(x, w, bias, epi, &g, p.variant)
}

/// gx = d(sum(y * gy)) / dx: conv2d of gy with w (w read as [in_c, out_c, kh, kw] = conv2d's
/// [out_c', in_c', kh, kw]). gy: [batch, out_c, out_h, out_w], x_shape: [batch, in_c, height, width].
pub fn conv_transpose2d_backward_data(gy: &Tensor, w: &Tensor, x_shape: &[usize], p: &ConvTranspose2dParams) -> Result<Tensor> {
    let op = "conv_transpose2d backward-data";
    expect_f32_4d(gy, "gy", op)?;
    expect_f32_4d(w, "weight", op)?;
    gy.expect_same_context(w, op)?;
    let g = geometry(op, x_shape, w.shape(), p)?;
    expect_shape(gy, &[g.n, g.cy, g.hy, g.wy], "gy", op)?;
    direct(gy, w, None, Epilogue::Identity, &g.swapped(), p.variant)
}

/// gw [in_c, out_c, kh, kw] = sum over batch and input pixels of x times the gy patch it feeds:
/// conv2d's weight gradient with gy as its input and x as its output gradient.
/// x: [batch, in_c, height, width], gy: [batch, out_c, out_h, out_w].
pub fn conv_transpose2d_backward_weight(x: &Tensor, gy: &Tensor, w_shape: &[usize], p: &ConvTranspose2dParams) -> Result<Tensor> {
    let op = "conv_transpose2d backward-weight";
    expect_f32_4d(x, "x", op)?;
    expect_f32_4d(gy, "gy", op)?;
    x.expect_same_context(gy, op)?;
    let g = geometry(op, x.shape(), w_shape, p)?;
    expect_shape(gy, &[g.n, g.cy, g.hy, g.wy], "gy", op)?;
    weight_grad(gy, x, &g.swapped(), p.variant)
}

/// gb = sum of gy over batch, height and width. gy: [batch, out_c, out_h, out_w] -> [out_c].
pub fn conv_transpose2d_backward_bias(gy: &Tensor) -> Result<Tensor> {
    expect_f32_4d(gy, "gy", "conv_transpose2d backward-bias")?;
    bias_grad(gy)
}

/// Plain-Rust f64 reference in the scatter form of the definition:
/// y[n, o, i*s - p + k*d] += x[n, c, i] * w[c, o, k] per axis.
pub mod cpu {
    use super::{conv_transpose_out_size, ConvTranspose2dParams};

    /// Output index of input position `i` at tap `k`, if inside: i*s - p + k*d.
    fn dst(i: usize, k: usize, s: usize, p: usize, d: usize, len: usize) -> Option<usize> {
        let o = (i * s + k * d) as i64 - p as i64;
        (o >= 0 && (o as usize) < len).then_some(o as usize)
    }

    fn for_each(xs: [usize; 4], ws: [usize; 4], p: &ConvTranspose2dParams, mut f: impl FnMut(usize, usize, usize)) -> [usize; 4] {
        let [n, ci, h, w] = xs;
        let [_, co, kh, kw] = ws;
        let oh = conv_transpose_out_size(h, kh, p.stride[0], p.padding[0], p.output_padding[0], p.dilation[0]).expect("output");
        let ow = conv_transpose_out_size(w, kw, p.stride[1], p.padding[1], p.output_padding[1], p.dilation[1]).expect("output");
        for b in 0..n {
            for c in 0..ci {
                for iy in 0..h {
                    for ix in 0..w {
                        let xi = ((b * ci + c) * h + iy) * w + ix;
                        for o in 0..co {
                            for ky in 0..kh {
                                let Some(y) = dst(iy, ky, p.stride[0], p.padding[0], p.dilation[0], oh) else { continue };
                                for kx in 0..kw {
                                    let Some(x) = dst(ix, kx, p.stride[1], p.padding[1], p.dilation[1], ow) else { continue };
                                    f(xi, ((c * co + o) * kh + ky) * kw + kx, ((b * co + o) * oh + y) * ow + x);
                                }
                            }
                        }
                    }
                }
            }
        }
        [n, co, oh, ow]
    }

    /// y = conv_transpose2d(x, w) + bias; returns y and its shape.
    pub fn conv_transpose2d(
        x: &[f64],
        xs: [usize; 4],
        w: &[f64],
        ws: [usize; 4],
        bias: Option<&[f64]>,
        p: &ConvTranspose2dParams,
    ) -> (Vec<f64>, [usize; 4]) {
        let shape = for_each(xs, ws, p, |_, _, _| {});
        let plane = shape[2] * shape[3];
        let mut y: Vec<f64> = (0..shape.iter().product()).map(|i| bias.map_or(0.0, |b| b[(i / plane) % shape[1]])).collect();
        for_each(xs, ws, p, |xi, wi, yi| y[yi] += x[xi] * w[wi]);
        (y, shape)
    }

    /// (gx, gw, gb) for upstream gradient gy.
    pub fn conv_transpose2d_backward(
        x: &[f64],
        xs: [usize; 4],
        w: &[f64],
        ws: [usize; 4],
        gy: &[f64],
        p: &ConvTranspose2dParams,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut gx = vec![0.0; x.len()];
        let mut gw = vec![0.0; w.len()];
        let shape = for_each(xs, ws, p, |xi, wi, yi| {
            gx[xi] += gy[yi] * w[wi];
            gw[wi] += gy[yi] * x[xi];
        });
        let plane = shape[2] * shape[3];
        let mut gb = vec![0.0; shape[1]];
        for (i, g) in gy.iter().enumerate() {
            gb[(i / plane) % shape[1]] += g;
        }
        (gx, gw, gb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// (x shape, out channels, kernel, stride, padding, output padding, dilation, bias).
    type Case = ([usize; 4], usize, [usize; 2], [usize; 2], [usize; 2], [usize; 2], [usize; 2], bool);
    fn cases() -> Vec<Case> {
        vec![
            // the decoder layer shape: 4x4, stride 2, pad 1
            ([3, 5, 6, 7], 3, [4, 4], [2, 2], [1, 1], [0, 0], [1, 1], true),
            // stride 2 with output_padding 1
            ([2, 3, 5, 4], 7, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], true),
            // stride 3, dilation 2, uneven per axis
            ([1, 7, 4, 5], 5, [3, 2], [3, 2], [2, 0], [2, 1], [2, 1], false),
            // stride larger than the kernel: some output phases get no tap at all
            ([2, 2, 3, 3], 3, [2, 2], [3, 3], [0, 0], [0, 0], [1, 1], true),
            // more than 64 output channels, output wider than one 8-column block
            ([1, 3, 3, 13], 66, [3, 3], [1, 2], [0, 1], [0, 1], [1, 1], true),
            // 4x4 stride 2 on lavapipe's all-phase kernel (transposed_s2k4): one output channel,
            // odd sizes over several 8-column blocks, padding 0 and 2 (other column alignments of
            // the padded copy), 11 channels (a partial second block of 8), output padding 1
            ([2, 5, 3, 19], 1, [4, 4], [2, 2], [1, 1], [0, 0], [1, 1], true),
            ([1, 3, 5, 9], 11, [4, 4], [2, 2], [0, 2], [1, 0], [1, 1], false),
            ([2, 9, 4, 18], 3, [4, 4], [2, 2], [2, 3], [0, 1], [1, 1], true),
            // ... and one block of 8 columns (output 6 wide)
            ([1, 2, 2, 3], 2, [4, 4], [2, 2], [1, 1], [0, 0], [1, 1], true),
            // unit stride, run as a direct conv with flipped weights: dilation 2 with output
            // padding 1 in height, narrow and wide rows; padding past d(k-1), which keeps the
            // transposed map
            ([2, 4, 5, 6], 5, [3, 3], [1, 1], [1, 2], [1, 0], [2, 1], true),
            ([1, 4, 3, 17], 6, [3, 3], [1, 1], [1, 1], [1, 0], [2, 1], true),
            ([1, 2, 4, 4], 3, [2, 2], [1, 1], [2, 0], [0, 0], [1, 1], false),
        ]
    }

    struct Data {
        x: Vec<f64>,
        w: Vec<f64>,
        b: Vec<f64>,
        gy: Vec<f64>,
        ws: [usize; 4],
        ys: [usize; 4],
        p: ConvTranspose2dParams,
    }

    fn data(c: &Case, seed: u64) -> Data {
        let (xs, co, k, s, pad, op, d, _) = *c;
        let mut rng = TestRng::new(seed);
        let ws = [xs[1], co, k[0], k[1]];
        let p = ConvTranspose2dParams::new(s, pad, op, d);
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -1.0, 1.0);
        let b = rng.vec(co, -1.0, 1.0);
        let (_, ys) = cpu::conv_transpose2d(&x, xs, &w, ws, None, &p);
        let gy = rng.vec(ys.iter().product(), -1.0, 1.0);
        Data { x, w, b, gy, ws, ys, p }
    }

    // Tolerance: f32 sums of at most a few hundred products of values in [-1, 1]; rounding stays
    // below 1e-4, while a wrong tap errs by order 0.1. See conv2d's tests.
    const ATOL: f64 = 2e-4;
    const RTOL: f64 = 1e-4;

    #[test]
    fn forward_matches_cpu_for_both_variants() {
        let ctx = gpu_or_skip!();
        for (ci, c) in cases().iter().enumerate() {
            let d = data(c, 30 + ci as u64);
            let want = cpu::conv_transpose2d(&d.x, c.0, &d.w, d.ws, c.7.then_some(&d.b[..]), &d.p).0;
            let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
            let w = Tensor::from_slice(&ctx, &d.ws, &to_f32(&d.w)).unwrap();
            let b = Tensor::from_slice(&ctx, &[c.1], &to_f32(&d.b)).unwrap();
            for v in crate::conv2d::ALL_VARIANTS {
                let y = conv_transpose2d(&x, &w, c.7.then_some(&b), &d.p.with_variant(v)).unwrap();
                assert_eq!(y.shape(), &d.ys);
                assert_close(&format!("conv_transpose2d {c:?} {v:?}"), &y.to_vec().unwrap(), &want, ATOL, RTOL);
            }
        }
    }

    /// Every case through the leaky-ReLU epilogue (slope 0.2, or ReLU on every other case).
    #[test]
    fn fused_epilogue_matches_cpu_for_both_variants() {
        let ctx = gpu_or_skip!();
        for (ci, c) in cases().iter().enumerate() {
            let d = data(c, 30 + ci as u64);
            let epi = Epilogue::LeakyRelu([0.2, 0.0][ci % 2]);
            let mut want = cpu::conv_transpose2d(&d.x, c.0, &d.w, d.ws, c.7.then_some(&d.b[..]), &d.p).0;
            crate::conv2d::cpu::epilogue(&mut want, epi);
            let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
            let w = Tensor::from_slice(&ctx, &d.ws, &to_f32(&d.w)).unwrap();
            let b = Tensor::from_slice(&ctx, &[c.1], &to_f32(&d.b)).unwrap();
            for v in crate::conv2d::ALL_VARIANTS {
                let y = conv_transpose2d_fused(&x, &w, c.7.then_some(&b), epi, &d.p.with_variant(v)).unwrap();
                assert_close(&format!("conv_transpose2d {c:?} {epi:?} {v:?}"), &y.to_vec().unwrap(), &want, ATOL, RTOL);
            }
        }
    }

    #[test]
    fn backward_matches_cpu_for_both_variants() {
        let ctx = gpu_or_skip!();
        for (ci, c) in cases().iter().enumerate() {
            let d = data(c, 40 + ci as u64);
            let (gx_ref, gw_ref, gb_ref) = cpu::conv_transpose2d_backward(&d.x, c.0, &d.w, d.ws, &d.gy, &d.p);
            let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
            let w = Tensor::from_slice(&ctx, &d.ws, &to_f32(&d.w)).unwrap();
            let gy = Tensor::from_slice(&ctx, &d.ys, &to_f32(&d.gy)).unwrap();
            for v in crate::conv2d::ALL_VARIANTS {
                let p = d.p.with_variant(v);
                let gx = conv_transpose2d_backward_data(&gy, &w, &c.0, &p).unwrap();
                assert_close(&format!("gx {c:?} {v:?}"), &gx.to_vec().unwrap(), &gx_ref, ATOL, RTOL);
                let gw = conv_transpose2d_backward_weight(&x, &gy, &d.ws, &p).unwrap();
                assert_close(&format!("gw {c:?} {v:?}"), &gw.to_vec().unwrap(), &gw_ref, ATOL, RTOL);
            }
            let gb = conv_transpose2d_backward_bias(&gy).unwrap();
            assert_close(&format!("gb {c:?}"), &gb.to_vec().unwrap(), &gb_ref, ATOL, RTOL);
        }
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        // y is linear in x, w and b: d/dx sum(y * gy) = conv2d of gy with w, d/dw = correlation
        // of x with gy, d/db = sum of gy.
        for c in [
            ([2, 2, 3, 4], 3, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], true),
            ([1, 3, 4, 3], 2, [2, 3], [3, 1], [0, 2], [2, 0], [2, 2], true),
        ] {
            let c: Case = c;
            let d = data(&c, 88);
            let (gx, gw, gb) = cpu::conv_transpose2d_backward(&d.x, c.0, &d.w, d.ws, &d.gy, &d.p);
            let fx = |x: &[f64]| cpu::conv_transpose2d(x, c.0, &d.w, d.ws, Some(&d.b), &d.p).0;
            let fw = |w: &[f64]| cpu::conv_transpose2d(&d.x, c.0, w, d.ws, Some(&d.b), &d.p).0;
            let fb = |b: &[f64]| cpu::conv_transpose2d(&d.x, c.0, &d.w, d.ws, Some(b), &d.p).0;
            assert_close_f64("gx", &gx, &numeric_vjp(fx, &d.x, &d.gy, 1e-6), 1e-7, 1e-6);
            assert_close_f64("gw", &gw, &numeric_vjp(fw, &d.w, &d.gy, 1e-6), 1e-7, 1e-6);
            assert_close_f64("gb", &gb, &numeric_vjp(fb, &d.b, &d.gy, 1e-6), 1e-7, 1e-6);
        }
    }

    /// The transpose relation itself: <conv_transpose2d(x), g> = <x, conv2d(g)> with the same weight.
    #[test]
    fn is_the_adjoint_of_conv2d() {
        let ctx = gpu_or_skip!();
        let c: Case = ([2, 3, 5, 6], 4, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], false);
        let d = data(&c, 3);
        let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
        let w = Tensor::from_slice(&ctx, &d.ws, &to_f32(&d.w)).unwrap();
        let g = Tensor::from_slice(&ctx, &d.ys, &to_f32(&d.gy)).unwrap();
        let y = conv_transpose2d(&x, &w, None, &d.p).unwrap().to_vec().unwrap();
        let cp = crate::conv2d::Conv2dParams::new(d.p.stride, d.p.padding, d.p.dilation);
        let cg = crate::conv2d::conv2d(&g, &w, None, &cp).unwrap().to_vec().unwrap();
        let lhs: f64 = y.iter().zip(&d.gy).map(|(a, b)| *a as f64 * b).sum();
        let rhs: f64 = cg.iter().zip(&d.x).map(|(a, b)| *a as f64 * b).sum();
        // Sums of a few hundred f32 products of order 1: agreement to 1e-3 absolute.
        assert!((lhs - rhs).abs() < 1e-3, "<convT(x), g> = {lhs} but <x, conv(g)> = {rhs}");
    }

    #[test]
    fn bad_shapes_are_named_in_errors() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[2, 3, 4, 4]).unwrap();
        let w = Tensor::zeros(&ctx, &[5, 2, 3, 3]).unwrap();
        let err = conv_transpose2d(&x, &w, None, &ConvTranspose2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("[5, 2, 3, 3]") && err.contains("[2, 3, 4, 4]"), "{err}");

        let w = Tensor::zeros(&ctx, &[3, 2, 3, 3]).unwrap();
        let p = ConvTranspose2dParams::new([2, 2], [1, 1], [2, 0], [1, 1]);
        let err = conv_transpose2d(&x, &w, None, &p).unwrap_err().to_string();
        assert!(err.contains("output_padding [2, 0]") && err.contains("stride [2, 2]"), "{err}");

        let p = ConvTranspose2dParams::new([1, 1], [3, 3], [0, 0], [1, 1]);
        let err = conv_transpose2d(&x, &w, None, &p).unwrap_err().to_string();
        assert!(err.contains("padding [3, 3]") && err.contains("[2, 3, 4, 4]"), "{err}");

        let b = Tensor::zeros(&ctx, &[3]).unwrap();
        let err = conv_transpose2d(&x, &w, Some(&b), &ConvTranspose2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("bias") && err.contains("[3]") && err.contains("[2]"), "{err}");

        let gy = Tensor::zeros(&ctx, &[2, 2, 5, 6]).unwrap();
        let p = ConvTranspose2dParams::default();
        let err = conv_transpose2d_backward_data(&gy, &w, &[2, 3, 4, 4], &p).unwrap_err().to_string();
        assert!(err.contains("[2, 2, 5, 6]") && err.contains("[2, 2, 6, 6]"), "{err}");
        let err = conv_transpose2d_backward_weight(&x, &gy, &[3, 2, 3, 3], &p).unwrap_err().to_string();
        assert!(err.contains("[2, 2, 5, 6]") && err.contains("[2, 2, 6, 6]"), "{err}");
    }
}
