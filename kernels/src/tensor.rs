//! GPU tensors: a pooled storage buffer plus a shape with contiguous (row-major) strides.
//!
//! Clones share the buffer; the buffer returns to the pool when the last clone drops.

use std::sync::Arc;

use crate::context::{Binding, Context};
use crate::error::{Error, Result};
use crate::pool::{FirstWrite, RawBuffer};

/// Element type of a tensor's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    /// Indices (argmax of max-pool, labels).
    U32,
}

struct Handle {
    ctx: Context,
    raw: Option<RawBuffer>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.ctx.release_buffer(raw);
        }
    }
}

#[derive(Clone)]
pub struct Tensor {
    handle: Arc<Handle>,
    shape: Vec<usize>,
    dtype: DType,
}

/// Row-major strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

impl Tensor {
    /// A tensor whose contents are whatever the pooled buffer held: every element must be written
    /// by the op that makes it, with a command recorded in the context's open encoder (dispatch,
    /// clear or copy). Its buffer may be one freed earlier in the same encoder (still read by
    /// commands recorded before), so the first write must not be a raw queue write; use
    /// [`Tensor::from_slice`] for uploads ([`Tensor::write`] is safe: it submits first).
    pub fn uninit(ctx: &Context, shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::alloc(ctx, shape, dtype, FirstWrite::Dispatch)
    }

    fn alloc(ctx: &Context, shape: &[usize], dtype: DType, first: FirstWrite) -> Result<Tensor> {
        // Checked: a shape from a corrupt file or an absurd flag must not wrap around to a small size.
        let bytes = shape.iter().try_fold(4u64, |acc, &d| acc.checked_mul(d as u64));
        let Some(bytes) = bytes.filter(|&b| b <= ctx.max_binding_bytes()) else {
            let needs = bytes.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string());
            return Err(Error::TooLarge(format!(
                "tensor {shape:?} needs {needs} bytes, over this device's storage binding limit of {} bytes; use a smaller batch",
                ctx.max_binding_bytes()
            )));
        };
        let raw = ctx.take_buffer(bytes.max(4), first);
        Ok(Tensor { handle: Arc::new(Handle { ctx: ctx.clone(), raw: Some(raw) }), shape: shape.to_vec(), dtype })
    }

    /// A tensor of zeros (cleared in the open encoder, so ordered with earlier ops).
    pub fn zeros(ctx: &Context, shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::uninit(ctx, shape, DType::F32)?;
        t.fill_zero();
        Ok(t)
    }

    /// Sets every element to zero, recorded in order with other ops.
    pub fn fill_zero(&self) {
        let raw = self.raw();
        let bytes = self.byte_len().div_ceil(4) * 4;
        self.handle.ctx.with_encoder(|enc, _| enc.clear_buffer(&raw.buffer, 0, Some(bytes.max(4))));
    }

    pub fn from_slice(ctx: &Context, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let t = Tensor::alloc(ctx, shape, DType::F32, FirstWrite::Upload)?;
        t.write_bytes(bytemuck::cast_slice(data), data.len(), true)?;
        Ok(t)
    }

    pub fn from_u32(ctx: &Context, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        let t = Tensor::alloc(ctx, shape, DType::U32, FirstWrite::Upload)?;
        t.write_bytes(bytemuck::cast_slice(data), data.len(), true)?;
        Ok(t)
    }

    /// A scalar (shape `[]`, one element).
    pub fn scalar(ctx: &Context, value: f32) -> Result<Tensor> {
        Tensor::from_slice(ctx, &[], &[value])
    }

    /// Overwrites the contents. Work already recorded is submitted first, because queue writes
    /// land before the next submission and would otherwise overtake it.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        if self.dtype != DType::F32 {
            return Err(Error::Shape(format!("write of f32 data into a {:?} tensor {:?}", self.dtype, self.shape)));
        }
        self.write_bytes(bytemuck::cast_slice(data), data.len(), false)
    }

    /// `fresh`: the buffer was just taken from the pool for an upload ([`FirstWrite::Upload`]), so
    /// no unsubmitted command can use it.
    fn write_bytes(&self, bytes: &[u8], len: usize, fresh: bool) -> Result<()> {
        if len != self.numel() {
            return Err(Error::Shape(format!(
                "{} values given for a tensor of shape {:?} ({} elements)",
                len,
                self.shape,
                self.numel()
            )));
        }
        let ctx = &self.handle.ctx;
        if !fresh && ctx.has_pending() {
            ctx.flush();
        }
        if !bytes.is_empty() {
            ctx.queue().write_buffer(&self.raw().buffer, 0, bytes);
        }
        Ok(())
    }

    pub fn to_vec(&self) -> Result<Vec<f32>> {
        if self.dtype != DType::F32 {
            return Err(Error::Shape(format!("to_vec on a {:?} tensor {:?}; use to_vec_u32", self.dtype, self.shape)));
        }
        Ok(bytemuck::cast_slice(&self.read()?).to_vec())
    }

    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        if self.dtype != DType::U32 {
            return Err(Error::Shape(format!("to_vec_u32 on a {:?} tensor {:?}", self.dtype, self.shape)));
        }
        Ok(bytemuck::cast_slice(&self.read()?).to_vec())
    }

    /// Reads a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::Shape(format!("item() on a tensor of shape {:?}", self.shape)));
        }
        Ok(self.to_vec()?[0])
    }

    fn read(&self) -> Result<Vec<u8>> {
        if self.numel() == 0 {
            return Ok(Vec::new());
        }
        self.handle.ctx.read_bytes(self.raw(), self.byte_len())
    }

    /// Same buffer, new shape with the same number of elements.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return Err(Error::Shape(format!("cannot reshape {:?} ({} elements) to {:?}", self.shape, self.numel(), shape)));
        }
        Ok(Tensor { handle: self.handle.clone(), shape: shape.to_vec(), dtype: self.dtype })
    }

    /// A new buffer holding a copy of this tensor's contents (recorded, not submitted).
    pub fn duplicate(&self) -> Result<Tensor> {
        let out = Tensor::uninit(self.context(), &self.shape, self.dtype)?;
        out.copy_from(self)?;
        Ok(out)
    }

    /// Records a copy of `src` into this tensor; shapes must hold the same number of elements.
    pub fn copy_from(&self, src: &Tensor) -> Result<()> {
        if src.numel() != self.numel() || src.dtype != self.dtype {
            return Err(Error::Shape(format!("copy from {:?} {:?} into {:?} {:?}", src.dtype, src.shape, self.dtype, self.shape)));
        }
        if self.numel() == 0 {
            return Ok(());
        }
        let (s, d, n) = (src.raw(), self.raw(), self.byte_len());
        self.handle.ctx.with_encoder(|enc, _| enc.copy_buffer_to_buffer(&s.buffer, 0, &d.buffer, 0, n));
        Ok(())
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn strides(&self) -> Vec<usize> {
        contiguous_strides(&self.shape)
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn context(&self) -> &Context {
        &self.handle.ctx
    }

    /// Bytes the elements occupy (the pooled buffer may be larger).
    pub fn byte_len(&self) -> u64 {
        self.numel() as u64 * 4
    }

    /// Identity of the underlying buffer: equal for clones and reshapes of one tensor.
    pub fn buffer_id(&self) -> u64 {
        self.raw().id
    }

    fn raw(&self) -> &RawBuffer {
        self.handle.raw.as_ref().expect("a live tensor always holds its buffer")
    }

    /// This tensor as a storage binding of a dispatch.
    pub fn binding(&self) -> Binding<'_> {
        Binding { raw: self.raw(), bytes: self.byte_len() }
    }

    /// Error unless the tensor has exactly `dims` dimensions; names the op.
    pub fn expect_rank(&self, dims: usize, op: &str) -> Result<()> {
        if self.shape.len() != dims {
            return Err(Error::Shape(format!("{op} expects a {dims}-d tensor, got shape {:?}", self.shape)));
        }
        Ok(())
    }

    /// Error unless both tensors live on the same context.
    pub fn expect_same_context(&self, other: &Tensor, op: &str) -> Result<()> {
        if !Arc::ptr_eq(&self.handle.ctx.inner, &other.handle.ctx.inner) {
            return Err(Error::Shape(format!("{op}: tensors come from different contexts")));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?})", self.shape, self.dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::{unary, Unary};
    use crate::gpu_or_skip;

    #[test]
    fn upload_download_round_trip_on_odd_sizes() {
        let ctx = gpu_or_skip!();
        for n in [1usize, 3, 63, 65, 1001] {
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
            let t = Tensor::from_slice(&ctx, &[n], &data).unwrap();
            assert_eq!(t.to_vec().unwrap(), data);
            let idx: Vec<u32> = (0..n as u32).rev().collect();
            assert_eq!(Tensor::from_u32(&ctx, &[n], &idx).unwrap().to_vec_u32().unwrap(), idx);
        }
        assert_eq!(Tensor::zeros(&ctx, &[3, 5]).unwrap().to_vec().unwrap(), vec![0.0; 15]);
        assert_eq!(Tensor::scalar(&ctx, 2.5).unwrap().item().unwrap(), 2.5);
    }

    #[test]
    fn write_after_recorded_ops_does_not_overtake_them() {
        let ctx = gpu_or_skip!();
        let x = Tensor::from_slice(&ctx, &[4], &[1.0, -2.0, 3.0, -4.0]).unwrap();
        let y = unary(&x, Unary::Neg).unwrap(); // recorded, not submitted
        x.write(&[10.0, 10.0, 10.0, 10.0]).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![-1.0, 2.0, -3.0, 4.0]);
        assert_eq!(x.to_vec().unwrap(), vec![10.0; 4]);
    }

    #[test]
    fn freed_buffers_are_reused_after_submission() {
        gpu_or_skip!();
        let ctx = own_context();
        let shape = [7, 11, 13, 17];
        let first = Tensor::zeros(&ctx, &shape).unwrap();
        let id = first.buffer_id();
        drop(first);
        ctx.flush();
        assert!(ctx.lock().pool.free_count() >= 1);
        let second = Tensor::uninit(&ctx, &shape, DType::F32).unwrap();
        assert_eq!(second.buffer_id(), id, "same size class must reuse the freed buffer");
    }

    /// A context of its own: these tests look at which buffer the pool hands out, which tests
    /// running in parallel on the shared context would disturb.
    fn own_context() -> Context {
        Context::with_limits(wgpu::Limits::default()).unwrap()
    }

    #[test]
    fn an_idle_buffer_serves_a_request_down_to_half_its_size() {
        gpu_or_skip!();
        let ctx = own_context();
        let big = Tensor::uninit(&ctx, &[1000], DType::F32).unwrap(); // 4000 bytes: class 4096
        let id = big.buffer_id();
        drop(big);
        ctx.flush();
        let half = Tensor::from_slice(&ctx, &[600], &[1.5; 600]).unwrap(); // class 2560
        assert_eq!(half.buffer_id(), id, "a class within 2x must reuse the idle buffer");
        assert_eq!(half.to_vec().unwrap(), vec![1.5; 600], "only the tensor's bytes are read back");
        drop(half);
        ctx.flush();
        let small = Tensor::uninit(&ctx, &[400], DType::F32).unwrap(); // class 1792: under half
        assert_ne!(small.buffer_id(), id, "a request under half the buffer must not take it");
        assert_eq!(ctx.pool_stats().held_bytes, 4096 + 1792);
    }

    #[test]
    fn an_upload_never_takes_a_buffer_freed_in_the_open_encoder() {
        gpu_or_skip!();
        let ctx = own_context();
        let shape = [5, 7, 11];
        let xs: Vec<f32> = (0..385).map(|i| i as f32 * 0.25 - 40.0).collect();
        let ys: Vec<f32> = (0..385).map(|i| 1000.0 + i as f32).collect();
        let x = Tensor::from_slice(&ctx, &shape, &xs).unwrap();
        ctx.flush();
        let a = unary(&x, Unary::Neg).unwrap(); // recorded: reads x at the next submit
        let freed = x.buffer_id();
        drop(x);
        // Uploaded by a queue write, which lands before the open encoder runs: in x's buffer it
        // would replace what `a` reads.
        let y = Tensor::from_slice(&ctx, &shape, &ys).unwrap();
        assert_ne!(y.buffer_id(), freed, "an upload took a buffer the open encoder still reads");
        let want: Vec<f32> = xs.iter().map(|v| -v).collect();
        assert_eq!(a.to_vec().unwrap(), want);
        assert_eq!(y.to_vec().unwrap(), ys);
        // After the submit the buffer is idle, and uploads may have it.
        let z = Tensor::from_slice(&ctx, &shape, &ys).unwrap();
        assert_eq!(z.buffer_id(), freed, "an idle buffer of the same size class is reused");
    }

    #[test]
    fn a_recorded_output_reuses_a_buffer_freed_in_the_open_encoder() {
        gpu_or_skip!();
        let ctx = own_context();
        let xs: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Tensor::from_slice(&ctx, &[1001], &xs).unwrap();
        ctx.flush();
        let created = ctx.buffers_created();
        // A chain x -> a -> b -> c, each freed after its successor is recorded: with reuse inside
        // the encoder two buffers serve it, each read by one dispatch and overwritten by the next.
        let a = unary(&x, Unary::Neg).unwrap();
        let x_id = x.buffer_id();
        drop(x);
        let b = unary(&a, Unary::Exp).unwrap();
        assert_eq!(b.buffer_id(), x_id, "the output did not reuse the buffer freed in this encoder");
        drop(a);
        let c = unary(&b, Unary::Neg).unwrap();
        drop(b);
        assert_eq!(ctx.buffers_created(), created + 1, "only the first output needs a new buffer");
        let want: Vec<f64> = xs.iter().map(|&v| -(-(v as f64)).exp()).collect();
        crate::testing::assert_close("neg(exp(neg(x)))", &c.to_vec().unwrap(), &want, 1e-6, 1e-6);
        let stats = ctx.pool_stats();
        assert_eq!(stats.buffers, 2, "{stats:?}");
        assert!(stats.peak_live_bytes >= 2 * 4004 && stats.live_bytes < stats.peak_live_bytes, "{stats:?}");
    }

    #[test]
    fn bad_shapes_and_oversized_tensors_are_clear_errors() {
        let ctx = gpu_or_skip!();
        let err = Tensor::from_slice(&ctx, &[2, 3], &[1.0; 5]).unwrap_err().to_string();
        assert!(err.contains("5 values") && err.contains("[2, 3]"), "{err}");
        let t = Tensor::zeros(&ctx, &[2, 3]).unwrap();
        let err = t.reshape(&[4, 2]).unwrap_err().to_string();
        assert!(err.contains("[2, 3]") && err.contains("[4, 2]"), "{err}");
        // 2^30 floats = 4 GiB: over the 128 MiB baseline binding limit.
        let err = Tensor::uninit(&ctx, &[1 << 15, 1 << 15], DType::F32).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
        assert!(err.to_string().contains("[32768, 32768]"), "{err}");
        assert!(err.to_string().contains("4294967296 bytes") && err.to_string().contains("limit of"), "{err}");
        // A product that overflows 64 bits (e.g. sizes read from a corrupt file) is the same error.
        let err = Tensor::uninit(&ctx, &[usize::MAX, 3, 5], DType::F32).unwrap_err().to_string();
        assert!(err.contains("more than 2^64") && err.contains("limit of"), "{err}");
    }
}
