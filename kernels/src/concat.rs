//! Concatenation and slicing along the channel axis (dim 1 of `[batch, channels, ...]`), each the
//! other's backward. WGSL: `shaders/concat.wgsl` (one copy kernel per input, with a channel
//! offset, so any number of inputs fits the 8-binding limit). CPU reference: [`cpu`].
//! Works on f32 and u32 tensors (elements are copied as bits).

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/concat.wgsl");
const INSERT: KernelSpec = KernelSpec { id: "concat.insert", source: SRC, entry: "insert", bindings: &[R, RW] };
const EXTRACT: KernelSpec = KernelSpec { id: "concat.extract", source: SRC, entry: "extract", bindings: &[R, RW] };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    small_plane: u32,
    big_plane: u32,
    offset: u32,
}

/// Elements per channel (product of the dims after 1).
fn rest(shape: &[usize]) -> usize {
    shape[2..].iter().product()
}

fn copy_params(small: &[usize], big: &[usize], channel_offset: usize) -> Params {
    let r = rest(small);
    Params {
        n: small.iter().product::<usize>() as u32,
        small_plane: (small[1] * r) as u32,
        big_plane: (big[1] * r) as u32,
        offset: (channel_offset * r) as u32,
    }
}

/// Records `small` into `big` at channel `channel_offset` (shapes checked by the caller).
fn insert(small: &Tensor, big: &Tensor, channel_offset: usize) -> Result<()> {
    let p = copy_params(small.shape(), big.shape(), channel_offset);
    small.context().dispatch(&INSERT, &p, &[small.binding(), big.binding()], grid_1d(small.numel(), WG_1D))
}

/// Channels `[start, end)` of `big` as a new tensor.
fn extract(big: &Tensor, start: usize, end: usize) -> Result<Tensor> {
    let mut shape = big.shape().to_vec();
    shape[1] = end - start;
    let small = Tensor::uninit(big.context(), &shape, big.dtype())?;
    let p = copy_params(&shape, big.shape(), start);
    big.context().dispatch(&EXTRACT, &p, &[big.binding(), small.binding()], grid_1d(small.numel(), WG_1D))?;
    Ok(small)
}

/// xs: each [batch, channels_i, rest...] with one batch, rest and dtype -> [batch, sum channels_i, rest...].
pub fn concat(xs: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = xs.first() else {
        return Err(Error::Shape("concat of an empty list".into()));
    };
    let shapes: Vec<&[usize]> = xs.iter().map(|t| t.shape()).collect();
    let agree = |t: &Tensor| {
        t.shape().len() >= 2
            && t.shape().len() == first.shape().len()
            && t.shape()[0] == first.shape()[0]
            && t.shape()[2..] == first.shape()[2..]
            && t.dtype() == first.dtype()
    };
    if !xs.iter().all(|t| agree(t)) {
        let dtypes: Vec<DType> = xs.iter().map(|t| t.dtype()).collect();
        return Err(Error::Shape(format!(
            "concat along dim 1 needs tensors of rank >= 2 agreeing in every other dim and dtype, got {shapes:?} {dtypes:?}"
        )));
    }
    for t in xs {
        first.expect_same_context(t, "concat")?;
    }
    let mut shape = first.shape().to_vec();
    shape[1] = xs.iter().map(|t| t.shape()[1]).sum();
    let out = Tensor::uninit(first.context(), &shape, first.dtype())?;
    let mut offset = 0;
    for t in xs {
        insert(t, &out, offset)?;
        offset += t.shape()[1];
    }
    Ok(out)
}

/// Gradient of [`concat`]: gy [batch, sum channels, rest...] split back into parts of `channels[i]`.
pub fn concat_backward(gy: &Tensor, channels: &[usize]) -> Result<Vec<Tensor>> {
    let total: usize = channels.iter().sum();
    if gy.shape().len() < 2 || gy.shape()[1] != total {
        return Err(Error::Shape(format!("concat_backward: gy {:?} does not have {total} = sum of {channels:?} channels", gy.shape())));
    }
    let mut start = 0;
    channels
        .iter()
        .map(|&c| {
            let part = extract(gy, start, start + c);
            start += c;
            part
        })
        .collect()
}

/// Channels `[start, end)`. x: [batch, channels, rest...] -> [batch, end - start, rest...].
pub fn slice_channels(x: &Tensor, start: usize, end: usize) -> Result<Tensor> {
    if x.shape().len() < 2 || start > end || end > x.shape()[1] {
        return Err(Error::Shape(format!("slice_channels [{start}, {end}) of x {:?}: needs rank >= 2 and start <= end <= channels", x.shape())));
    }
    extract(x, start, end)
}

/// Gradient of [`slice_channels`]: gy placed at channel `start` of zeros of `input_shape`.
pub fn slice_channels_backward(gy: &Tensor, input_shape: &[usize], start: usize) -> Result<Tensor> {
    let s = gy.shape();
    let fits = s.len() >= 2
        && s.len() == input_shape.len()
        && s[0] == input_shape[0]
        && s[2..] == input_shape[2..]
        && start + s[1] <= input_shape[1];
    if !fits || gy.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "slice_channels_backward: f32 gy {s:?} ({:?}) does not fit input {input_shape:?} at channel {start}",
            gy.dtype()
        )));
    }
    let gx = Tensor::zeros(gy.context(), input_shape)?;
    insert(gy, &gx, start)?;
    Ok(gx)
}

/// Plain-Rust f64 reference on flat row-major data.
pub mod cpu {
    fn rest(shape: &[usize]) -> usize {
        shape[2..].iter().product()
    }

    pub fn concat(xs: &[(&[f64], &[usize])]) -> Vec<f64> {
        let batch = xs[0].1[0];
        let mut out = Vec::new();
        for n in 0..batch {
            for (x, shape) in xs {
                let plane = shape[1] * rest(shape);
                out.extend_from_slice(&x[n * plane..(n + 1) * plane]);
            }
        }
        out
    }

    pub fn slice_channels(x: &[f64], shape: &[usize], start: usize, end: usize) -> Vec<f64> {
        let r = rest(shape);
        let plane = shape[1] * r;
        (0..shape[0]).flat_map(|n| x[n * plane + start * r..n * plane + end * r].iter().copied()).collect()
    }

    pub fn slice_channels_backward(gy: &[f64], input_shape: &[usize], start: usize, end: usize) -> Vec<f64> {
        let r = rest(input_shape);
        let plane = input_shape[1] * r;
        let mut gx = vec![0.0; input_shape.iter().product()];
        let part = (end - start) * r;
        for n in 0..input_shape[0] {
            gx[n * plane + start * r..n * plane + end * r].copy_from_slice(&gy[n * part..(n + 1) * part]);
        }
        gx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    #[test]
    fn concat_and_slice_match_cpu_and_invert_each_other() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(41);
        // 4-d with odd spatial sizes, 2-d (rest = 1), 3-d; one part with a single channel.
        for (batch, rest) in [(3usize, vec![5usize, 7]), (5, vec![]), (2, vec![9])] {
            let channels = [2usize, 1, 5];
            let shapes: Vec<Vec<usize>> =
                channels.iter().map(|&c| [vec![batch, c], rest.clone()].concat()).collect();
            let data: Vec<Vec<f64>> = shapes.iter().map(|s| rng.vec(s.iter().product(), -1.0, 1.0)).collect();
            let ts: Vec<Tensor> = shapes.iter().zip(&data).map(|(s, d)| Tensor::from_slice(&ctx, s, &to_f32(d)).unwrap()).collect();
            let refs: Vec<&Tensor> = ts.iter().collect();
            let y = concat(&refs).unwrap();
            assert_eq!(y.shape(), [vec![batch, 8], rest.clone()].concat().as_slice());
            let parts: Vec<(&[f64], &[usize])> = data.iter().zip(&shapes).map(|(d, s)| (d.as_slice(), s.as_slice())).collect();
            let want = cpu::concat(&parts);
            // Copies: exact.
            assert_close(&format!("concat {rest:?}"), &y.to_vec().unwrap(), &want, 0.0, 0.0);
            let back = concat_backward(&y, &channels).unwrap();
            for (i, b) in back.iter().enumerate() {
                assert_close(&format!("concat_backward part {i}"), &b.to_vec().unwrap(), &data[i], 0.0, 0.0);
            }
            let yshape = y.shape().to_vec();
            let sl = slice_channels(&y, 1, 6).unwrap();
            assert_close("slice", &sl.to_vec().unwrap(), &cpu::slice_channels(&want, &yshape, 1, 6), 0.0, 0.0);
            let gy = rng.vec(sl.numel(), -1.0, 1.0);
            let gyt = Tensor::from_slice(&ctx, sl.shape(), &to_f32(&gy)).unwrap();
            let gx = slice_channels_backward(&gyt, &yshape, 1).unwrap();
            assert_close("slice backward", &gx.to_vec().unwrap(), &cpu::slice_channels_backward(&gy, &yshape, 1, 6), 0.0, 0.0);
        }
    }

    #[test]
    fn u32_tensors_concatenate_bitwise() {
        let ctx = gpu_or_skip!();
        let a = Tensor::from_u32(&ctx, &[2, 1, 2], &[1, 2, 3, 4]).unwrap();
        let b = Tensor::from_u32(&ctx, &[2, 2, 2], &[5, 6, 7, 8, 9, 10, 11, 12]).unwrap();
        let y = concat(&[&a, &b]).unwrap();
        assert_eq!(y.to_vec_u32().unwrap(), vec![1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12]);
        assert_eq!(slice_channels(&y, 2, 3).unwrap().to_vec_u32().unwrap(), vec![7, 8, 11, 12]);
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(42);
        let shape = [2, 5, 3];
        let x = rng.vec(30, -1.0, 1.0);
        let w = rng.vec(2 * 3 * 3, -1.0, 1.0);
        // Slicing is linear: central differences are exact up to rounding.
        let num = numeric_vjp(|x| cpu::slice_channels(x, &shape, 1, 4), &x, &w, 1e-3);
        assert_close_f64("slice", &cpu::slice_channels_backward(&w, &shape, 1, 4), &num, 1e-10, 1e-10);
        let a = rng.vec(2 * 2 * 3, -1.0, 1.0);
        let b = rng.vec(2 * 3 * 3, -1.0, 1.0);
        let w = rng.vec(30, -1.0, 1.0);
        let num = numeric_vjp(|a| cpu::concat(&[(a, &[2usize, 2, 3][..]), (b.as_slice(), &[2usize, 3, 3][..])]), &a, &w, 1e-3);
        // concat's backward for part 0 is the slice of channels [0, 2).
        assert_close_f64("concat", &cpu::slice_channels(&w, &shape, 0, 2), &num, 1e-10, 1e-10);
    }

    #[test]
    fn bad_inputs_are_named() {
        let ctx = gpu_or_skip!();
        let a = Tensor::zeros(&ctx, &[2, 3, 4]).unwrap();
        let b = Tensor::zeros(&ctx, &[2, 3, 5]).unwrap();
        let err = concat(&[&a, &b]).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4]") && err.contains("[2, 3, 5]"), "{err}");
        assert!(concat(&[]).is_err());
        let err = slice_channels(&a, 2, 4).unwrap_err().to_string();
        assert!(err.contains("[2, 4)") && err.contains("[2, 3, 4]"), "{err}");
        let err = concat_backward(&a, &[1, 1]).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4]") && err.contains("[1, 1]"), "{err}");
        let err = slice_channels_backward(&a, &[2, 4, 5], 0).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4]") && err.contains("[2, 4, 5]"), "{err}");
    }
}
