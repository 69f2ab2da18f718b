//! 2-D convolution (NCHW, groups = 1) with PyTorch semantics: forward, backward-data,
//! backward-weight and bias gradient. WGSL: `shaders/conv2d.wgsl`. CPU reference: [`cpu`].
//!
//! The shader's three implicit GEMMs (direct, transposed, weight gradient) also serve
//! [`crate::conv_transpose2d`]: conv2d's backward-data is a transposed conv and conv_transpose2d's
//! backward-data is a direct conv. Each GEMM has two variants: register-blocked without workgroup
//! memory for CPU adapters (lavapipe) and workgroup-memory tiles for GPUs; [`Variant`] forces one.
//! On the register variant, unit-stride 1x1 maps (forward, backward-data, weight gradient) are
//! plain per-sample matrix products and run on [`crate::matmul`]'s register kernel.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};
use crate::matmul::{matmul_with, MatmulVariant, SUBGROUP_LANES};

/// conv2d.wgsl with its register kernels' plain loads (conv2d_loads.wgsl).
const SRC: &str = concat!(include_str!("../../shaders/conv2d.wgsl"), include_str!("../../shaders/conv2d_loads.wgsl"));
const PAD: KernelSpec = KernelSpec { id: "conv2d.pad", source: SRC, entry: "pad", bindings: &[R, RW] };
/// `pad` with vec4 stores, for destination rows a multiple of 4 wide.
const PAD4: KernelSpec = KernelSpec { id: "conv2d.pad4", source: SRC, entry: "pad4", bindings: &[R, RW] };
const CROP: KernelSpec = KernelSpec { id: "conv2d.crop", source: SRC, entry: "crop", bindings: &[R, RW] };
const CROP_EPILOGUE: KernelSpec =
    KernelSpec { id: "conv2d.crop_epilogue", source: SRC, entry: "crop_epilogue", bindings: &[R, R, RW] };
const FLIP_WEIGHTS: KernelSpec =
    KernelSpec { id: "conv2d.flip_weights", source: SRC, entry: "flip_weights", bindings: &[R, RW] };
const PACK_WEIGHTS: KernelSpec =
    KernelSpec { id: "conv2d.pack_weights", source: SRC, entry: "pack_weights", bindings: &[R, RW] };
const DIRECT_REG: KernelSpec =
    KernelSpec { id: "conv2d.direct_reg", source: SRC, entry: "direct_reg", bindings: &[R, R, R, RW] };
const DIRECT_REG_S2: KernelSpec =
    KernelSpec { id: "conv2d.direct_reg_s2", source: SRC, entry: "direct_reg_s2", bindings: &[R, R, R, RW] };
const DIRECT_REG_S1_R8: KernelSpec =
    KernelSpec { id: "conv2d.direct_reg_s1_r8", source: SRC, entry: "direct_reg_s1_r8", bindings: &[R, R, R, RW] };
const DIRECT_REG_S2_R8: KernelSpec =
    KernelSpec { id: "conv2d.direct_reg_s2_r8", source: SRC, entry: "direct_reg_s2_r8", bindings: &[R, R, R, RW] };
const DIRECT_REG_S1_R16: KernelSpec =
    KernelSpec { id: "conv2d.direct_reg_s1_r16", source: SRC, entry: "direct_reg_s1_r16", bindings: &[R, R, R, RW] };
const DIRECT_REG_S2_R16: KernelSpec =
    KernelSpec { id: "conv2d.direct_reg_s2_r16", source: SRC, entry: "direct_reg_s2_r16", bindings: &[R, R, R, RW] };
const DIRECT_REG_S1: KernelSpec =
    KernelSpec { id: "conv2d.direct_reg_s1", source: SRC, entry: "direct_reg_s1", bindings: &[R, R, R, RW] };
const TRANSPOSED_REG: KernelSpec =
    KernelSpec { id: "conv2d.transposed_reg", source: SRC, entry: "transposed_reg", bindings: &[R, R, R, RW] };
const TRANSPOSED_REG16: KernelSpec =
    KernelSpec { id: "conv2d.transposed_reg16", source: SRC, entry: "transposed_reg16", bindings: &[R, R, R, RW] };
const TRANSPOSED_S2K4: KernelSpec =
    KernelSpec { id: "conv2d.transposed_s2k4", source: SRC, entry: "transposed_s2k4", bindings: &[R, R, R, RW] };
const WGRAD_REG: KernelSpec = KernelSpec { id: "conv2d.wgrad_reg", source: SRC, entry: "wgrad_reg", bindings: &[R, R, RW] };
const WGRAD_REG_S1: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1", source: SRC, entry: "wgrad_reg_s1", bindings: &[R, R, RW] };
const WGRAD_REG_S1_T8: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_t8", source: SRC, entry: "wgrad_reg_s1_t8", bindings: &[R, R, RW] };
const WGRAD_REG_S1_T5: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_t5", source: SRC, entry: "wgrad_reg_s1_t5", bindings: &[R, R, RW] };
const WGRAD_REG_S1_K5: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_k5", source: SRC, entry: "wgrad_reg_s1_k5", bindings: &[R, R, RW] };
const WGRAD_REG_S1_K5_R8: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_k5_r8", source: SRC, entry: "wgrad_reg_s1_k5_r8", bindings: &[R, R, RW] };
const WGRAD_REG_S1_K3: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_k3", source: SRC, entry: "wgrad_reg_s1_k3", bindings: &[R, R, RW] };
const WGRAD_REG_S1_K3_R8: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_k3_r8", source: SRC, entry: "wgrad_reg_s1_k3_r8", bindings: &[R, R, RW] };
const WGRAD_REG_S2_K4: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s2_k4", source: SRC, entry: "wgrad_reg_s2_k4", bindings: &[R, R, RW] };
const WGRAD_REG_K1: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_k1", source: SRC, entry: "wgrad_reg_k1", bindings: &[R, R, RW] };
const GEMM_TILED: KernelSpec =
    KernelSpec { id: "conv2d.gemm_tiled", source: SRC, entry: "gemm_tiled", bindings: &[R, R, R, RW] };
const GEMM_TILED8: KernelSpec =
    KernelSpec { id: "conv2d.gemm_tiled8", source: SRC, entry: "gemm_tiled8", bindings: &[R, R, R, RW] };
const SUM_SPLITS: KernelSpec = KernelSpec { id: "conv2d.sum_splits", source: SRC, entry: "sum_splits", bindings: &[R, RW] };
/// Values one `pad` or `crop` invocation writes (the shader's PAD_RUN).
const PAD_RUN: usize = 8;
const BIAS_GRAD: KernelSpec = KernelSpec { id: "conv2d.bias_grad", source: SRC, entry: "bias_grad", bindings: &[R, RW] };

/// conv2d.wgsl with loads shared across a subgroup (conv2d_subgroup.wgsl): the same register
/// kernels (`*_sg` ids, same entry points); built only on devices with SUBGROUP.
const SRC_SUBGROUP: &str = concat!(include_str!("../../shaders/conv2d.wgsl"), include_str!("../../shaders/conv2d_subgroup.wgsl"));
const DIRECT_REG_S1_R8_SG: KernelSpec = KernelSpec {
    id: "conv2d.direct_reg_s1_r8_sg",
    source: SRC_SUBGROUP,
    entry: "direct_reg_s1_r8",
    bindings: &[R, R, R, RW],
};
const DIRECT_REG_S1_R16_SG: KernelSpec = KernelSpec {
    id: "conv2d.direct_reg_s1_r16_sg",
    source: SRC_SUBGROUP,
    entry: "direct_reg_s1_r16",
    bindings: &[R, R, R, RW],
};
const TRANSPOSED_REG16_SG: KernelSpec = KernelSpec {
    id: "conv2d.transposed_reg16_sg",
    source: SRC_SUBGROUP,
    entry: "transposed_reg16",
    bindings: &[R, R, R, RW],
};
const DIRECT_REG_S2_R16_SG: KernelSpec = KernelSpec {
    id: "conv2d.direct_reg_s2_r16_sg",
    source: SRC_SUBGROUP,
    entry: "direct_reg_s2_r16",
    bindings: &[R, R, R, RW],
};
const DIRECT_REG_S2_R8_SG: KernelSpec = KernelSpec {
    id: "conv2d.direct_reg_s2_r8_sg",
    source: SRC_SUBGROUP,
    entry: "direct_reg_s2_r8",
    bindings: &[R, R, R, RW],
};
const WGRAD_REG_S1_K3_SG: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_k3_sg", source: SRC_SUBGROUP, entry: "wgrad_reg_s1_k3", bindings: &[R, R, RW] };
const WGRAD_REG_S1_K3_R8_SG: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s1_k3_r8_sg", source: SRC_SUBGROUP, entry: "wgrad_reg_s1_k3_r8", bindings: &[R, R, RW] };
const WGRAD_REG_S2_K4_SG: KernelSpec =
    KernelSpec { id: "conv2d.wgrad_reg_s2_k4_sg", source: SRC_SUBGROUP, entry: "wgrad_reg_s2_k4", bindings: &[R, R, RW] };
const TRANSPOSED_S2K4_SG: KernelSpec = KernelSpec {
    id: "conv2d.transposed_s2k4_sg",
    source: SRC_SUBGROUP,
    entry: "transposed_s2k4",
    bindings: &[R, R, R, RW],
};
const TRANSPOSED_REG_SG: KernelSpec = KernelSpec {
    id: "conv2d.transposed_reg_sg",
    source: SRC_SUBGROUP,
    entry: "transposed_reg",
    bindings: &[R, R, R, RW],
};

/// Invocations the register weight gradients aim for (64 workgroups: a few per core on any CPU),
/// reached with as few splits of the reduction as possible.
const WGRAD_MIN_LANES: usize = 4096;
/// Output columns per invocation of the register-blocked direct and transposed kernels.
const DIRECT_COLS: usize = 16;
const REG_COLS: usize = 8;
/// Output channels per invocation of the register-blocked kernels.
const REG_ROWS: usize = 4;
/// The tiled kernel's tile for `rows` GEMM rows (output channels): 256 invocations of 4 x 4
/// outputs as `tile_m` x (256 / `tile_m`), so rows x cols = (4 tile_m) x (1024 / tile_m), and its
/// K step. Few-channel layers (LeNets: 4 to 32) get short wide tiles instead of 64-row tiles that
/// are mostly zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tile {
    tile_m: usize,
    k_step: usize,
    /// Outputs per invocation along each axis: 4 (`gemm_tiled`) or 8 (`gemm_tiled8`).
    block: usize,
}

/// `ODDITY_CONV_TILED=plain`: the GPU conv without 8 x 8 tiles and without the per-phase split of
/// strided transposed maps (4 x 4 tiles, one GEMM over all taps), so that a GPU session can time
/// both on the same binary. Read once.
fn plain_tiled() -> bool {
    static PLAIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PLAIN.get_or_init(|| std::env::var("ODDITY_CONV_TILED").is_ok_and(|v| v == "plain"))
}

/// The fewest 8 x 8 tiles a direct or transposed map runs with on `Auto` / `Tiled`: four times
/// the work per workgroup of the 4 x 4 tiles, so a layer with fewer would leave a large GPU's
/// cores idle (132 on an H100; two workgroups each).
const MIN_WIDE_TILES: usize = 256;

impl Tile {
    /// 4 x 4 outputs per invocation on tiles shaped by the row count (out channels), so that
    /// few-channel layers do not fill 64-row tiles with zeros.
    fn for_rows(rows: usize) -> Tile {
        match rows {
            0..=16 => Tile { tile_m: 4, k_step: 8, block: 4 },
            17..=32 => Tile { tile_m: 8, k_step: 16, block: 4 },
            _ => Tile { tile_m: 16, k_step: 16, block: 4 },
        }
    }

    /// 8 x 8 outputs per invocation: 64 x 256 tiles up to 64 rows, 128 x 128 above.
    fn wide(rows: usize) -> Tile {
        Tile { tile_m: if rows <= 64 { 8 } else { 16 }, k_step: 8, block: 8 }
    }

    /// The tile for a product of `rows` x `cols` outputs: 8 x 8 blocks on layers of more than 32
    /// channels with enough tiles to fill a GPU (always on `TiledWide`), else 4 x 4.
    fn pick(rows: usize, cols: usize, v: Variant) -> Tile {
        let wide = Tile::wide(rows);
        if v == Variant::TiledWide || (rows > 32 && wide.count(rows, cols) >= MIN_WIDE_TILES && !plain_tiled()) {
            wide
        } else {
            Tile::for_rows(rows)
        }
    }

    /// The weight gradient's tile: its splits of the reduction fill the GPU whatever the tile
    /// count, so 8 x 8 blocks above 32 channels (always on `TiledWide`).
    fn for_weight_grad(rows: usize, v: Variant) -> Tile {
        if v == Variant::TiledWide || (rows > 32 && !plain_tiled()) { Tile::wide(rows) } else { Tile::for_rows(rows) }
    }

    fn rows(self) -> usize {
        self.block * self.tile_m
    }

    fn cols(self) -> usize {
        self.block * 256 / self.tile_m
    }

    fn count(self, rows: usize, cols: usize) -> usize {
        rows.div_ceil(self.rows()) * cols.div_ceil(self.cols())
    }

    fn spec(self) -> &'static KernelSpec {
        if self.block == 8 { &GEMM_TILED8 } else { &GEMM_TILED }
    }

    fn set(self, params: &mut Params) {
        params.tile_m = self.tile_m as u32;
        params.tile_k = self.k_step as u32;
    }
}

/// Which kernel variant runs. `Auto` picks `Registers` on CPU adapters and `Tiled` on GPUs;
/// tests force each to check both against the CPU reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Variant {
    #[default]
    Auto,
    /// Register blocks, no workgroup memory (fast on lavapipe), never subgroup operations.
    Registers,
    /// `Registers`, with the kernels whose lanes share loads through subgroup operations where
    /// the device has subgroups of 8 or more lanes (what `Auto` picks on CPU adapters).
    Subgroup,
    /// Workgroup-memory tiles (fast on GPUs): 8 x 8 outputs per invocation on big layers,
    /// 4 x 4 on the others.
    Tiled,
    /// `Tiled` with 8 x 8 outputs per invocation on every layer (tests, benchmarks).
    TiledWide,
}

impl Variant {
    fn registers(self, t: &Tensor) -> bool {
        match self {
            Variant::Auto => t.context().is_cpu_adapter(),
            Variant::Registers | Variant::Subgroup => true,
            Variant::Tiled | Variant::TiledWide => false,
        }
    }

    /// Register kernels that share loads across a subgroup may run.
    fn subgroups(self, t: &Tensor) -> bool {
        self != Variant::Registers
            && self.registers(t)
            && t.context().subgroup_min_lanes().is_some_and(|l| l >= SUBGROUP_LANES)
    }

    /// The matmul family the register path's GEMMs use.
    fn matmul(self) -> MatmulVariant {
        if self == Variant::Registers { MatmulVariant::Registers } else { MatmulVariant::Subgroup }
    }
}

/// What the forward kernels apply to each output after adding the bias. Fusing a layer's
/// activation into its conv's stores saves one dispatch and one pass over y (read and write) per
/// layer, and the pre-activation tensor is never stored.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Epilogue {
    #[default]
    Identity,
    /// z for z > 0, slope * z otherwise (slope 0 is ReLU). The slope must be finite and >= 0:
    /// then y > 0 exactly where z > 0, so the backward can read the activation's derivative off y
    /// and the pre-activation need not be kept.
    LeakyRelu(f32),
}

impl Epilogue {
    pub(crate) fn check(self, op: &str) -> Result<()> {
        match self {
            Epilogue::LeakyRelu(s) if !(s.is_finite() && s >= 0.0) => Err(Error::Shape(format!(
                "{op}: fused leaky ReLU slope {s} must be finite and >= 0 (apply other activations separately)"
            ))),
            _ => Ok(()),
        }
    }

    fn set(self, params: &mut Params) {
        if let Epilogue::LeakyRelu(s) = self {
            params.leaky = 1;
            params.slope = s;
        }
    }
}

/// Stride, padding and dilation per axis (height, width), as PyTorch's `Conv2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub variant: Variant,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams { stride: [1, 1], padding: [0, 0], dilation: [1, 1], variant: Variant::Auto }
    }
}

impl Conv2dParams {
    pub fn new(stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> Self {
        Conv2dParams { stride, padding, dilation, variant: Variant::Auto }
    }

    /// Same parameters with a forced kernel variant.
    pub fn with_variant(self, variant: Variant) -> Self {
        Conv2dParams { variant, ..self }
    }
}

/// Output size of one axis: floor((in + 2p - d(k-1) - 1) / s) + 1, or None when the kernel does
/// not fit in the padded input.
pub fn conv_out_size(input: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation * (kernel - 1) + 1;
    let padded = input + 2 * padding;
    if padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    cx: u32,
    hx: u32,
    wx: u32,
    cy: u32,
    hy: u32,
    wy: u32,
    mode: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    has_bias: u32,
    splits: u32,
    chunk: u32,
    len: u32,
    pad_top: u32,
    pad_left: u32,
    src_h: u32,
    src_w: u32,
    tile_m: u32,
    tile_k: u32,
    leaky: u32,
    slope: f32,
    /// gemm_tiled mode 3: the output phase (oh + ph) % sh, (ow + pw) % sw this dispatch computes.
    phase_h: u32,
    phase_w: u32,
    pad: [u32; 2],
}

/// The geometry of one direct map: source x [n, cx, hx, wx], destination y [n, cy, hy, wy],
/// kernel [kh, kw], and stride, padding, dilation per axis. The transposed map runs the same
/// relation backwards (its source is the direct map's destination); the shader's `Params` names
/// the tensor it reads "x" and the one it writes "y" in both cases.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub n: usize,
    pub cx: usize,
    pub hx: usize,
    pub wx: usize,
    pub cy: usize,
    pub hy: usize,
    pub wy: usize,
    pub k: [usize; 2],
    pub s: [usize; 2],
    pub p: [usize; 2],
    pub d: [usize; 2],
}

impl Geom {
    fn params(&self) -> Params {
        Params {
            n: self.n as u32,
            cx: self.cx as u32,
            hx: self.hx as u32,
            wx: self.wx as u32,
            cy: self.cy as u32,
            hy: self.hy as u32,
            wy: self.wy as u32,
            kh: self.k[0] as u32,
            kw: self.k[1] as u32,
            sh: self.s[0] as u32,
            sw: self.s[1] as u32,
            ph: self.p[0] as u32,
            pw: self.p[1] as u32,
            dh: self.d[0] as u32,
            dw: self.d[1] as u32,
            ..Default::default()
        }
    }

    /// A 1x1 kernel at unit stride without padding maps every pixel on its own, so each plane's
    /// rows can be joined into one row of h*w pixels: the row-blocked lavapipe kernels then pad
    /// and waste columns once per plane, not once per row (MLSAD's 25-wide rows ran 32 wide, read
    /// from 36-wide padded copies). `None` for other maps and for planes already one row high.
    fn pointwise_rows(&self) -> Option<Geom> {
        (self.k == [1, 1] && self.s == [1, 1] && self.p == [0, 0] && self.hy > 1)
            .then(|| Geom { hx: 1, wx: self.hx * self.wx, hy: 1, wy: self.hy * self.wy, ..*self })
    }

    /// Swaps source and destination: the transposed map of this direct map.
    pub fn swapped(&self) -> Geom {
        Geom { cx: self.cy, hx: self.hy, wx: self.wy, cy: self.cx, hy: self.hx, wy: self.wx, ..*self }
    }
}

/// A zero-padded copy of `x` [n, c, h, w] of size [n, c, hp, wp] with x at (top, left); `x` itself
/// when no padding is needed.
fn padded(x: &Tensor, top: usize, left: usize, hp: usize, wp: usize) -> Result<Tensor> {
    let [n, c, h, w] = dims4(x.shape());
    if top == 0 && left == 0 && hp == h && wp == w {
        return Ok(x.clone());
    }
    let out = Tensor::uninit(x.context(), &[n, c, hp, wp], DType::F32)?;
    let params = Params {
        hx: hp as u32,
        wx: wp as u32,
        len: out.numel() as u32,
        pad_top: top as u32,
        pad_left: left as u32,
        src_h: h as u32,
        src_w: w as u32,
        ..Default::default()
    };
    let spec = if wp % 4 == 0 { &PAD4 } else { &PAD };
    x.context().dispatch(spec, &params, &[x.binding(), out.binding()], grid_1d(out.numel().div_ceil(PAD_RUN), WG_1D))?;
    Ok(out)
}

fn dims4(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

/// w [cy, cx, kh, kw] repacked as [ceil(cy / 4), cx*kh*kw, 4] (zero-filled past cy): the 4 output
/// channels of a register block read their weights of one tap as one vec4.
fn packed_weights(w: &Tensor, g: &Geom) -> Result<Tensor> {
    let ksize = g.cx * g.k[0] * g.k[1];
    // A multiple of 4: the 16-channel kernel reads blocks in fours (the 8-channel one in pairs).
    let blocks = g.cy.div_ceil(4 * REG_ROWS) * 4;
    let out = Tensor::uninit(w.context(), &[blocks, ksize, REG_ROWS], DType::F32)?;
    let params = Params { len: out.numel() as u32, ..g.params() };
    w.context().dispatch(&PACK_WEIGHTS, &params, &[w.binding(), out.binding()], grid_1d(out.numel(), WG_1D))?;
    Ok(out)
}

/// `grid_1d` for `threads` register-blocked invocations with `z` in the third dimension.
fn grid_z(threads: usize, z: usize) -> [u32; 3] {
    let [x, y, _] = grid_1d(threads, WG_1D);
    [x, y, z as u32]
}

/// A one-element stand-in bound where an optional tensor is absent.
fn dummy(t: &Tensor) -> Result<Tensor> {
    Tensor::zeros(t.context(), &[1])
}

/// The bias to bind: the given one, or the stand-in (the kernel reads it only when `has_bias`).
fn bias_or_dummy<'a>(x: &Tensor, bias: Option<&'a Tensor>) -> Result<std::borrow::Cow<'a, Tensor>> {
    Ok(match bias {
        Some(b) => std::borrow::Cow::Borrowed(b),
        None => std::borrow::Cow::Owned(dummy(x)?),
    })
}

/// Direct map: y [n, cy, hy, wy] = sum over taps of w [cy, cx, kh, kw] * x [n, cx, hx, wx] (+ bias [cy]).
pub(crate) fn direct(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, epi: Epilogue, g: &Geom, v: Variant) -> Result<Tensor> {
    if let Some(f) = g.pointwise_rows() {
        let y = direct(&x.reshape(&[f.n, f.cx, f.hx, f.wx])?, w, bias, epi, &f, v)?;
        return y.reshape(&[g.n, g.cy, g.hy, g.wy]);
    }
    let ctx = x.context();
    let y = Tensor::uninit(ctx, &[g.n, g.cy, g.hy, g.wy], DType::F32)?;
    let b = bias_or_dummy(x, bias)?;
    let mut params = g.params();
    params.has_bias = bias.is_some() as u32;
    epi.set(&mut params);
    if v.registers(x) && g.k == [1, 1] && g.s == [1, 1] && g.p == [0, 0] && g.hx == 1 && g.cx % 4 == 0 {
        pointwise_gemm(x, w, &b, &params, g, &y, v)?;
        return Ok(y);
    }
    if v.registers(x) {
        let tiles_w = g.wy.div_ceil(DIRECT_COLS);
        if direct_flat_planes(x, w, &b, g, params, &y, v)? {
            return Ok(y);
        }
        // Rows read: oh*s - p + ky*d.
        let max_row = (g.hy - 1) * g.s[0] + (g.k[0] - 1) * g.d[0];
        let hp = (g.hx + g.p[0]).max(max_row + 1);
        // Unit stride and dilation in width: vec4 reads of whole 16-column windows plus the 4-column
        // lookahead, reloaded every 4 taps; the row is a multiple of 4 wide so rows stay aligned.
        let s1 = g.s[1] == 1 && g.d[1] == 1;
        let s2 = g.s[1] == 2 && g.d[1] == 1;
        let wp = if s1 {
            let max_col = tiles_w * DIRECT_COLS + 4 + 4 * ((g.k[1] - 1) / 4);
            (g.wx + g.p[1]).max(max_col).next_multiple_of(4)
        } else if s2 {
            // Stride 2: 2 * 16 columns per window, then one 4-wide lookahead per 2 slides of a phase.
            let max_col = 2 * tiles_w * DIRECT_COLS + 4 + 4 * (g.k[1].div_ceil(2) / 2);
            (g.wx + g.p[1]).max(max_col).next_multiple_of(4)
        } else {
            // Columns up to the last of the last 16-wide tile, plus one past the window read by
            // the shader's last step (slide or reload).
            let max_col = (tiles_w * DIRECT_COLS) * g.s[1] + (g.k[1] - 1) * g.d[1] + g.d[1];
            (g.wx + g.p[1]).max(max_col + 1)
        };
        let xp = padded(x, g.p[0], g.p[1], hp, wp)?;
        let wpk = packed_weights(w, g)?;
        params.hx = hp as u32;
        params.wx = wp as u32;
        let grid = grid_z(g.n * g.hy * tiles_w, g.cy.div_ceil(REG_ROWS));
        if !(s1 || s2) {
            ctx.dispatch(&DIRECT_REG, &params, &[xp.binding(), wpk.binding(), b.binding(), y.binding()], grid)?;
            return Ok(y);
        }
        // 8 or 16 output channels per invocation where there are more than 4 (fewer x loads per
        // FMA).
        let (spec, rows) = if s1 {
            direct_blocks(x, g, v, [&DIRECT_REG_S1, &DIRECT_REG_S1_R8, &DIRECT_REG_S1_R8_SG, &DIRECT_REG_S1_R16, &DIRECT_REG_S1_R16_SG])
        } else {
            direct_blocks(x, g, v, [&DIRECT_REG_S2, &DIRECT_REG_S2_R8, &DIRECT_REG_S2_R8_SG, &DIRECT_REG_S2_R16, &DIRECT_REG_S2_R16_SG])
        };
        let grid = grid_z(g.n * g.hy * tiles_w, g.cy.div_ceil(rows));
        // These store whole vec4s: rows padded to a multiple of 4, cropped back afterwards.
        let wy4 = g.wy.next_multiple_of(4);
        if wy4 == g.wy {
            ctx.dispatch(spec, &params, &[xp.binding(), wpk.binding(), b.binding(), y.binding()], grid)?;
        } else {
            let y4 = Tensor::uninit(ctx, &[g.n, g.cy, g.hy, wy4], DType::F32)?;
            params.wy = wy4 as u32;
            ctx.dispatch(spec, &params, &[xp.binding(), wpk.binding(), b.binding(), y4.binding()], grid)?;
            let crop = Params { len: y.numel() as u32, wx: wy4 as u32, wy: g.wy as u32, ..Default::default() };
            ctx.dispatch(&CROP, &crop, &[y4.binding(), y.binding()], grid_1d(y.numel().div_ceil(PAD_RUN), WG_1D))?;
        }
    } else {
        params.mode = 0;
        let tile = Tile::pick(g.cy, g.n * g.hy * g.wy, v);
        tile.set(&mut params);
        ctx.dispatch(tile.spec(), &params, &[w.binding(), x.binding(), b.binding(), y.binding()], tiled_grid(g, tile))?;
    }
    Ok(y)
}

/// lavapipe: a unit-stride 1x1 map on joined rows (see [`Geom::pointwise_rows`]) is one GEMM per
/// sample, y[n] = w [cy, cx] @ x[n] [cx, hw], which the matmul's vec4 register blocks run about
/// twice as fast as the row kernels (llvmpipe, 2 cores, `cargo bench --bench kernels`: the
/// 8x512x25x25 -> 256 forward 149 ms; the same product as a matmul 69 ms). Rows are padded to a
/// multiple of 4 for its vec4 loads (cx must be one too); the crop adds bias and activation.
fn pointwise_gemm(x: &Tensor, w: &Tensor, b: &Tensor, params: &Params, g: &Geom, y: &Tensor, v: Variant) -> Result<()> {
    let hw4 = g.wx.next_multiple_of(4);
    let xp = padded(x, 0, 0, 1, hw4)?;
    let w2 = w.reshape(&[g.cy, g.cx])?;
    let y4 = matmul_with(&w2, &xp.reshape(&[g.n, g.cx, hw4])?, false, false, v.matmul())?;
    let crop = Params {
        len: y.numel() as u32,
        wx: hw4 as u32,
        wy: g.wy as u32,
        hy: 1,
        cy: g.cy as u32,
        has_bias: params.has_bias,
        leaky: params.leaky,
        slope: params.slope,
        ..Default::default()
    };
    let grid = grid_1d(y.numel().div_ceil(PAD_RUN), WG_1D);
    x.context().dispatch(&CROP_EPILOGUE, &crop, &[y4.binding(), b.binding(), y.binding()], grid)?;
    Ok(())
}

/// The direct register kernel for `g` of one width stride, from `[4 channels, 8, 8 with
/// subgroups, 16, 16 with subgroups]`, and the output channels one invocation takes: 16 above 8
/// channels (`direct_reg_s1_r16` / `_s2_r16`), 8 above 4, else 4. `ODDITY_CONV_R16=off` keeps 8
/// for the 16-channel layers, so that one binary can time both. 16 on Vulkan only: llvmpipe's GL
/// compiler took minutes over the 16-channel kernels (their 64 vec4 accumulators) where Vulkan's
/// lavapipe takes a second, and only lavapipe's speed was measured.
fn direct_blocks(x: &Tensor, g: &Geom, v: Variant, specs: [&'static KernelSpec; 5]) -> (&'static KernelSpec, usize) {
    if g.cy > 2 * REG_ROWS && wide_blocks(x) {
        (direct_sg(x, g, v, [specs[3], specs[4]]), 4 * REG_ROWS)
    } else if g.cy > REG_ROWS {
        (direct_sg(x, g, v, [specs[1], specs[2]]), 2 * REG_ROWS)
    } else {
        (specs[0], REG_ROWS)
    }
}

/// Whether the register convs may take their wider channel blocks (16 for the direct and
/// transposed maps, 8 for the 3x3 and 5x5 weight gradients): on Vulkan (see [`direct_blocks`]) and
/// unless `ODDITY_CONV_R16=off` (read once) asks for the narrower ones.
fn wide_blocks(x: &Tensor) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var("ODDITY_CONV_R16").is_ok_and(|v| v == "off"));
    x.context().backend() == wgpu::Backend::Vulkan && !off
}

/// An 8- or 16-channel direct register kernel, `[plain, subgroup]`: the subgroup module (weights shared
/// across the subgroup) where allowed and a row of taps fits one subgroup's 8 lanes.
fn direct_sg(x: &Tensor, g: &Geom, v: Variant, specs: [&'static KernelSpec; 2]) -> &'static KernelSpec {
    specs[(v.subgroups(x) && g.k[1] <= SUBGROUP_LANES as usize) as usize]
}

/// The register kernels at unit stride on narrow rows, where a 16-column block per output row
/// would mostly compute padding (8-wide rows: half). With zero padding on both sides, a plane's
/// output rows form one flat row of hy * wp values, wp - wy of them junk per row (cropped after):
/// output q reads x[q + ky*dh*wp + kx], which the kernels' unchecked row-major reads give as is.
/// Writes y and returns true, or returns false where this would not save column blocks.
fn direct_flat_planes(x: &Tensor, w: &Tensor, b: &Tensor, g: &Geom, mut params: Params, y: &Tensor, v: Variant) -> Result<bool> {
    let tiles_w = g.wy.div_ceil(DIRECT_COLS);
    if g.s != [1, 1] || g.d[1] != 1 || g.hy < 2 {
        return Ok(false);
    }
    let wp = (g.wx + 2 * g.p[1]).next_multiple_of(4);
    let cols = g.hy * wp;
    let tiles = cols.div_ceil(DIRECT_COLS);
    if tiles >= g.hy * tiles_w {
        return Ok(false);
    }
    // The last block's window and lookahead, tap rows below: whole zero rows past the plane.
    let reach = tiles * DIRECT_COLS + 4 + 4 * ((g.k[1] - 1) / 4) + (g.k[0] - 1) * g.d[0] * wp;
    let hp = (g.hx + 2 * g.p[0]).max(reach.div_ceil(wp));
    let ctx = x.context();
    let xp = padded(x, g.p[0], g.p[1], hp, wp)?;
    let wpk = packed_weights(w, g)?;
    params.hx = hp as u32;
    params.wx = wp as u32;
    params.hy = 1;
    params.wy = cols as u32;
    let (spec, rows) = direct_blocks(x, g, v, [&DIRECT_REG_S1, &DIRECT_REG_S1_R8, &DIRECT_REG_S1_R8_SG, &DIRECT_REG_S1_R16, &DIRECT_REG_S1_R16_SG]);
    let grid = grid_z(g.n * tiles, g.cy.div_ceil(rows));
    let flat = Tensor::uninit(ctx, &[g.n, g.cy, 1, cols], DType::F32)?;
    ctx.dispatch(spec, &params, &[xp.binding(), wpk.binding(), b.binding(), flat.binding()], grid)?;
    let crop = Params { len: y.numel() as u32, wx: wp as u32, wy: g.wy as u32, ..Default::default() };
    ctx.dispatch(&CROP, &crop, &[flat.binding(), y.binding()], grid_1d(y.numel().div_ceil(PAD_RUN), WG_1D))?;
    Ok(true)
}

/// Transposed map: y [n, cy, hy, wy] where y[.., oh, ow] gathers x [n, cx, hx, wx] at
/// ((oh + p - ky*d)/s, (ow + p - kx*d)/s) when divisible, times w [cx, cy, kh, kw] (+ bias [cy]).
pub(crate) fn transposed(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, epi: Epilogue, g: &Geom, v: Variant) -> Result<Tensor> {
    let ctx = x.context();
    let y = Tensor::uninit(ctx, &[g.n, g.cy, g.hy, g.wy], DType::F32)?;
    let b = bias_or_dummy(x, bias)?;
    let mut params = g.params();
    params.has_bias = bias.is_some() as u32;
    epi.set(&mut params);
    if v.registers(x) && g.k == [4, 4] && g.s == [2, 2] && g.d == [1, 1] && wide_blocks(x) {
        transposed_s2k4(x, w, &b, &mut params, g, v, &y)?;
    } else if v.registers(x) {
        let rows = g.hy.div_ceil(g.s[0]);
        let cols = g.wy.div_ceil(g.s[1]);
        let tiles_w = cols.div_ceil(REG_COLS);
        // Source rows read by phase ph: r + (ph + p - ky*d)/s for r < rows and divisible taps;
        // columns likewise for every column of the 8-wide tiles.
        let range = |k: usize, s: usize, p: usize, d: usize, count: usize| -> (i64, i64) {
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for ph in 0..s {
                for kk in 0..k {
                    let t = (ph + p) as i64 - (kk * d) as i64;
                    if t.rem_euclid(s as i64) == 0 {
                        lo = lo.min(t / s as i64);
                        hi = hi.max(t / s as i64 + count as i64 - 1);
                    }
                }
            }
            (lo, hi)
        };
        let (rlo, rhi) = range(g.k[0], g.s[0], g.p[0], g.d[0], rows);
        let (clo, chi) = range(g.k[1], g.s[1], g.p[1], g.d[1], tiles_w * REG_COLS);
        let (top, left) = ((-rlo).max(0) as usize, (-clo).max(0) as usize);
        let hp = top + g.hx.max((rhi + 1).max(0) as usize);
        let wp = left + g.wx.max((chi + 1).max(0) as usize);
        let xp = padded(x, top, left, hp, wp)?;
        params.hx = hp as u32;
        params.wx = wp as u32;
        params.pad_top = top as u32;
        params.pad_left = left as u32;
        // 8 output channels per invocation, 16 above 8 (Vulkan, as direct_blocks); with subgroups
        // their weights are shared across it.
        let wide = g.cy > 2 * REG_ROWS && wide_blocks(x);
        let (specs, block) = if wide {
            ([&TRANSPOSED_REG16, &TRANSPOSED_REG16_SG], 4 * REG_ROWS)
        } else {
            ([&TRANSPOSED_REG, &TRANSPOSED_REG_SG], 2 * REG_ROWS)
        };
        let spec = specs[v.subgroups(x) as usize];
        let grid = grid_z(g.n * rows * tiles_w, g.s[0] * g.s[1] * g.cy.div_ceil(block));
        ctx.dispatch(spec, &params, &[xp.binding(), w.binding(), b.binding(), y.binding()], grid)?;
    } else if g.s != [1, 1] && g.d == [1, 1] && !plain_tiled() {
        // One GEMM per output phase, over that phase's taps only (gemm_tiled mode 3).
        params.mode = 3;
        for (qh, qw) in (0..g.s[0]).flat_map(|qh| (0..g.s[1]).map(move |qw| (qh, qw))) {
            let first = |q: usize, s: usize, p: usize| (q + s - p % s) % s;
            let count = |first: usize, len: usize, s: usize| if first < len { (len - first).div_ceil(s) } else { 0 };
            let cols = g.n * count(first(qh, g.s[0], g.p[0]), g.hy, g.s[0]) * count(first(qw, g.s[1], g.p[1]), g.wy, g.s[1]);
            if cols == 0 {
                continue;
            }
            params.phase_h = qh as u32;
            params.phase_w = qw as u32;
            let tile = Tile::pick(g.cy, cols, v);
            tile.set(&mut params);
            let grid = tiled_grid_cols(cols, g.cy, tile);
            ctx.dispatch(tile.spec(), &params, &[w.binding(), x.binding(), b.binding(), y.binding()], grid)?;
        }
    } else {
        params.mode = 1;
        let tile = Tile::pick(g.cy, g.n * g.hy * g.wy, v);
        tile.set(&mut params);
        ctx.dispatch(tile.spec(), &params, &[w.binding(), x.binding(), b.binding(), y.binding()], tiled_grid(g, tile))?;
    }
    Ok(y)
}

/// lavapipe, 4x4 kernel at stride 2 (`transposed_s2k4`): all four output phases of a block per
/// invocation, in q = o + p coordinates, where q-rows 2Q and 2Q + 1 read source rows Q - 1 and Q.
/// The padded copy puts source row Q - 1 of the first block at a row >= 0 and source column
/// C - 1 of every block's first C on a multiple of 4 (C = p / 2 + 8t), for aligned vec4 loads.
fn transposed_s2k4(x: &Tensor, w: &Tensor, b: &Tensor, params: &mut Params, g: &Geom, v: Variant, y: &Tensor) -> Result<()> {
    let (q0h, q0w) = (g.p[0] / 2, g.p[1] / 2);
    let rows = (g.hy + g.p[0] - 1) / 2 + 1 - q0h;
    let cols = (g.wy + g.p[1] - 1) / 2 + 1 - q0w;
    let tiles_w = cols.div_ceil(REG_COLS);
    let top = 1usize.saturating_sub(q0h);
    // q0w - 1 + left: the smallest multiple of 4 that leaves left >= 0.
    let left = (q0w.max(1) - 1).next_multiple_of(4) + 1 - q0w;
    // Rows up to source row Q_last (row Q of the last block); columns up to the last block's
    // three vec4s.
    let hp = (g.hx + top).max(q0h + rows + top);
    let wp = (g.wx + left).max(q0w + (tiles_w - 1) * REG_COLS + left + 11).next_multiple_of(4);
    let xp = padded(x, top, left, hp, wp)?;
    params.hx = hp as u32;
    params.wx = wp as u32;
    params.pad_top = top as u32;
    params.pad_left = left as u32;
    let spec = if v.subgroups(x) { &TRANSPOSED_S2K4_SG } else { &TRANSPOSED_S2K4 };
    let grid = grid_z(g.n * rows * tiles_w, g.cy.div_ceil(2 * REG_ROWS));
    x.context().dispatch(spec, &*params, &[xp.binding(), w.binding(), b.binding(), y.binding()], grid)
}

/// Grid of the tiled kernel for modes 0 and 1: column tiles folded over x and z, channel tiles on y.
fn tiled_grid(g: &Geom, tile: Tile) -> [u32; 3] {
    tiled_grid_cols(g.n * g.hy * g.wy, g.cy, tile)
}

/// [`tiled_grid`] for a product of `rows` x `cols` outputs.
fn tiled_grid_cols(cols: usize, rows: usize, tile: Tile) -> [u32; 3] {
    let col_tiles = cols.div_ceil(tile.cols());
    let z = col_tiles.div_ceil(65535).max(1);
    [col_tiles.div_ceil(z) as u32, rows.div_ceil(tile.rows()) as u32, z as u32]
}

/// Weight gradient of the direct map: gw [cy, cx, kh, kw] = sum over n and destination pixels of
/// gy [n, cy, hy, wy] times x [n, cx, hx, wx] at the tap. Split over the reduction, then summed.
pub(crate) fn weight_grad(x: &Tensor, gy: &Tensor, g: &Geom, v: Variant) -> Result<Tensor> {
    if let Some(f) = g.pointwise_rows() {
        return weight_grad(&x.reshape(&[f.n, f.cx, f.hx, f.wx])?, &gy.reshape(&[f.n, f.cy, f.hy, f.wy])?, &f, v);
    }
    let ctx = x.context();
    let ksize = g.cx * g.k[0] * g.k[1];
    let len = g.cy * ksize;
    // lavapipe, pointwise on joined rows: per sample gy[n] [cy, hw] @ x[n]^T, as the forward's GEMM
    // (the [n, cy, cx] products must fit one binding; they are summed over n below).
    if v.registers(x) && g.k == [1, 1] && g.s == [1, 1] && g.p == [0, 0] && g.hx == 1
        && (g.n * len * 4) as u64 <= ctx.max_binding_bytes()
    {
        let hw4 = g.wx.next_multiple_of(4);
        let xp = padded(x, 0, 0, 1, hw4)?.reshape(&[g.n, g.cx, hw4])?;
        let gyp = padded(gy, 0, 0, 1, hw4)?.reshape(&[g.n, g.cy, hw4])?;
        let part = matmul_with(&gyp, &xp, false, true, v.matmul())?;
        let gw = Tensor::uninit(ctx, &[g.cy, g.cx, 1, 1], DType::F32)?;
        let sum = Params { len: len as u32, splits: g.n as u32, ..Default::default() };
        ctx.dispatch(&SUM_SPLITS, &sum, &[part.binding(), gw.binding()], grid_1d(len, WG_1D))?;
        return Ok(gw);
    }
    let mut params = g.params();
    let part;
    let splits;
    if v.registers(x) {
        // Whole destination rows per split. Every split writes a partial weight gradient that
        // sum_splits reads back (on lavapipe stores go lane by lane, like loads), so as few splits
        // as leave WGRAD_MIN_LANES invocations to spread over the cores, and no more than one
        // storage binding holds (`part` is [splits, len]; 64 splits of a 256x256x3x3 weight
        // already pass the WebGPU baseline's 128 MiB).
        let rows_total = g.n * g.hy;
        let fit = (ctx.max_binding_bytes() / (len as u64 * 4)).clamp(1, 64) as usize;
        let max_splits = rows_total.clamp(1, fit);
        let max_row = (g.hy - 1) * g.s[0] + (g.k[0] - 1) * g.d[0];
        let hp = (g.hx + g.p[0]).max(max_row + 1);
        params.hx = hp as u32;
        let m_blocks = g.cy.div_ceil(REG_ROWS);
        // The kernel, its operands, and its grid per split: `Flat(units)` is one invocation per
        // unit and split; `Split(x)` is [x workgroups, splits, m_blocks].
        enum Grid {
            Flat(usize),
            Split(usize),
        }
        let (spec, xp, gyp, grid): (&KernelSpec, Tensor, Tensor, Grid) = if g.s[1] == 1 && g.d[1] == 1 {
            // Rows read 4 columns at a time: gy padded with zero columns to a multiple of 4, x
            // wide enough for the last window (the last tap block and 4 columns past the row).
            let wy4 = g.wy.next_multiple_of(4);
            let gyp = padded(gy, 0, 0, g.hy, wy4)?;
            let one_by_one = g.k == [1, 1];
            // Taps per invocation: 8 for kernels wider than 4 (wgrad_reg_s1_t8), else 4.
            let taps = if g.k[1] > 4 { 8 } else { 4 };
            let tap_blocks = g.k[1].div_ceil(taps);
            let reach = if one_by_one { wy4 } else { wy4 + taps * tap_blocks };
            let wp = (g.wx + g.p[1]).max(reach).next_multiple_of(4);
            let xp = padded(x, g.p[0], g.p[1], hp, wp)?;
            params.wx = wp as u32;
            params.wy = wy4 as u32;
            let (spec, blocks) = if one_by_one {
                (&WGRAD_REG_K1, g.cx.div_ceil(4))
            } else if g.k[1] == 5 {
                (&WGRAD_REG_S1_T5, g.cx * g.k[0])
            } else if taps == 8 {
                (&WGRAD_REG_S1_T8, g.cx * g.k[0] * tap_blocks)
            } else {
                (&WGRAD_REG_S1, g.cx * g.k[0] * tap_blocks)
            };
            // 3x3 and 5x5: one invocation per (input channel, output block, split) takes all
            // taps (wgrad_reg_s1_k3 / _k5), with blocks of 8 output channels above 4
            // (`_r8`; Vulkan, as direct_blocks) where there is work enough.
            let sg = v.subgroups(x);
            // Only where the 8-channel grid can still fill a few workgroups per core (the
            // Fashion-MNIST LeNet's 1 -> 8 layer would run on one workgroup, one core).
            let r8 = g.cy > REG_ROWS && g.cx * g.cy.div_ceil(2 * REG_ROWS) * max_splits >= 4 * WG_1D as usize && wide_blocks(x);
            let all_taps = match g.k {
                [3, 3] if r8 => Some((if sg { &WGRAD_REG_S1_K3_R8_SG } else { &WGRAD_REG_S1_K3_R8 }, 2 * REG_ROWS)),
                [3, 3] => Some((if sg { &WGRAD_REG_S1_K3_SG } else { &WGRAD_REG_S1_K3 }, REG_ROWS)),
                [5, 5] if r8 => Some((&WGRAD_REG_S1_K5_R8, 2 * REG_ROWS)),
                [5, 5] => Some((&WGRAD_REG_S1_K5, REG_ROWS)),
                _ => None,
            };
            match all_taps {
                Some((spec, block)) => (spec, xp, gyp, Grid::Flat(g.cx * g.cy.div_ceil(block))),
                None => (spec, xp, gyp, Grid::Split(blocks.div_ceil(64))),
            }
        } else if g.k == [4, 4] && g.s == [2, 2] && g.d == [1, 1] {
            // 4x4 stride 2, all 16 taps per (input channel, 8-output-channel block, split):
            // gy padded to whole vec4s (zero columns add nothing), x rows wide enough for the
            // last block's 12-column window and a multiple of 4.
            let wy4 = g.wy.next_multiple_of(4);
            let gyp = padded(gy, 0, 0, g.hy, wy4)?;
            let wp = (g.wx + g.p[1]).max(2 * wy4 + 4).next_multiple_of(4);
            let xp = padded(x, g.p[0], g.p[1], hp, wp)?;
            params.wx = wp as u32;
            params.wy = wy4 as u32;
            let spec = if v.subgroups(x) { &WGRAD_REG_S2_K4_SG } else { &WGRAD_REG_S2_K4 };
            (spec, xp, gyp, Grid::Flat(g.cx * g.cy.div_ceil(8)))
        } else {
            let max_col = (g.wy - 1) * g.s[1] + (g.k[1] - 1) * g.d[1];
            let wp = (g.wx + g.p[1]).max(max_col + 1);
            let xp = padded(x, g.p[0], g.p[1], hp, wp)?;
            params.wx = wp as u32;
            (&WGRAD_REG, xp, gy.clone(), Grid::Split(ksize.div_ceil(REG_COLS * 64)))
        };
        let lanes = match grid {
            Grid::Flat(units) => units,
            Grid::Split(groups) => groups * 64 * m_blocks,
        };
        let want = WGRAD_MIN_LANES.div_ceil(lanes.max(1)).clamp(1, max_splits);
        let chunk = rows_total.div_ceil(want);
        splits = rows_total.div_ceil(chunk);
        params.chunk = chunk as u32;
        params.splits = splits as u32;
        part = Tensor::uninit(ctx, &[splits, len], DType::F32)?;
        let grid = match grid {
            Grid::Flat(units) => grid_1d(units * splits, WG_1D),
            Grid::Split(groups) => [groups as u32, splits as u32, m_blocks as u32],
        };
        ctx.dispatch(spec, &params, &[xp.binding(), gyp.binding(), part.binding()], grid)?;
    } else {
        // Splits of the n*hy*wy reduction in whole K steps, enough workgroups to fill a GPU.
        let red = g.n * g.hy * g.wy;
        let tile = Tile::for_weight_grad(g.cy, v);
        let tiles = tile.count(g.cy, ksize);
        let fit = (ctx.max_binding_bytes() / (len as u64 * 4)).max(1) as usize;
        // As many invocations in flight as 1024 4 x 4 tiles'.
        let want = (1024 * 16 / (tile.block * tile.block) / tiles).clamp(1, 65535).min(red.div_ceil(tile.k_step)).min(fit);
        let chunk = red.div_ceil(want).div_ceil(tile.k_step) * tile.k_step;
        splits = red.div_ceil(chunk);
        params.mode = 2;
        params.chunk = chunk as u32;
        params.splits = splits as u32;
        part = Tensor::uninit(ctx, &[splits, len], DType::F32)?;
        let b = dummy(x)?;
        tile.set(&mut params);
        let grid = [ksize.div_ceil(tile.cols()) as u32, g.cy.div_ceil(tile.rows()) as u32, splits as u32];
        ctx.dispatch(tile.spec(), &params, &[gy.binding(), x.binding(), b.binding(), part.binding()], grid)?;
    }
    if splits == 1 {
        return part.reshape(&[g.cy, g.cx, g.k[0], g.k[1]]);
    }
    let gw = Tensor::uninit(ctx, &[g.cy, g.cx, g.k[0], g.k[1]], DType::F32)?;
    let sum = Params { len: len as u32, splits: splits as u32, ..Default::default() };
    ctx.dispatch(&SUM_SPLITS, &sum, &[part.binding(), gw.binding()], grid_1d(len, WG_1D))?;
    Ok(gw)
}

/// gb [c] = sum over n, h, w of gy [n, c, h, w].
pub(crate) fn bias_grad(gy: &Tensor) -> Result<Tensor> {
    bias_grad_split(gy, None)
}

/// [`bias_grad`] with the samples split into `forced` chunks (`None`: by adapter, as the weight
/// gradient: a few workgroups per core on a CPU, thousands on a GPU, each at least 64 values per thread).
fn bias_grad_split(gy: &Tensor, forced: Option<usize>) -> Result<Tensor> {
    let [n, c, h, w] = dims4(gy.shape());
    let ctx = gy.context();
    let want = forced.unwrap_or_else(|| {
        let (workgroups, min_values): (usize, usize) = if ctx.is_cpu_adapter() { (8, 64 * 256) } else { (2048, 64 * 64) };
        workgroups.div_ceil(c.max(1)).min((n * h * w).div_ceil(min_values))
    });
    let chunk = n.div_ceil(want.clamp(1, n.max(1))).max(1);
    let splits = n.div_ceil(chunk).max(1);
    let params = Params {
        n: n as u32,
        cy: c as u32,
        hy: h as u32,
        wy: w as u32,
        chunk: chunk as u32,
        splits: splits as u32,
        ..Default::default()
    };
    let gb = Tensor::uninit(ctx, &[c], DType::F32)?;
    if splits == 1 {
        ctx.dispatch(&BIAS_GRAD, &params, &[gy.binding(), gb.binding()], [c as u32, 1, 1])?;
    } else {
        let part = Tensor::uninit(ctx, &[splits, c], DType::F32)?;
        ctx.dispatch(&BIAS_GRAD, &params, &[gy.binding(), part.binding()], [c as u32, splits as u32, 1])?;
        let sum = Params { len: c as u32, splits: splits as u32, ..Default::default() };
        ctx.dispatch(&SUM_SPLITS, &sum, &[part.binding(), gb.binding()], grid_1d(c, WG_1D))?;
    }
    Ok(gb)
}

pub(crate) fn expect_f32_4d(t: &Tensor, what: &str, op: &str) -> Result<()> {
    if t.dtype() != DType::F32 || t.shape().len() != 4 {
        return Err(Error::Shape(format!("{op}: {what} must be a 4-d f32 tensor, got {:?} {:?}", t.dtype(), t.shape())));
    }
    Ok(())
}

/// Checks stride, dilation and the weight, and returns the geometry of x [n, c_in, h, w] ->
/// y [n, c_out, oh, ow] for weight [c_out, c_in, kh, kw].
fn geometry(op: &str, x_shape: &[usize], w_shape: &[usize], p: &Conv2dParams) -> Result<Geom> {
    if x_shape.len() != 4 || w_shape.len() != 4 {
        return Err(Error::Shape(format!("{op}: x {x_shape:?} and weight {w_shape:?} must both be 4-d")));
    }
    if p.stride.contains(&0) || p.dilation.contains(&0) {
        return Err(Error::Shape(format!(
            "{op}: stride {:?} and dilation {:?} must be positive",
            p.stride, p.dilation
        )));
    }
    let [n, c_in, h, w] = dims4(x_shape);
    let [c_out, wc_in, kh, kw] = dims4(w_shape);
    if wc_in != c_in || c_out == 0 || kh == 0 || kw == 0 {
        return Err(Error::Shape(format!(
            "{op}: weight {w_shape:?} does not fit x {x_shape:?} (weight is [out_c, in_c = {c_in}, kh, kw])"
        )));
    }
    let (Some(oh), Some(ow)) =
        (conv_out_size(h, kh, p.stride[0], p.padding[0], p.dilation[0]), conv_out_size(w, kw, p.stride[1], p.padding[1], p.dilation[1]))
    else {
        return Err(Error::Shape(format!(
            "{op}: kernel {:?} with dilation {:?} is larger than x {x_shape:?} padded by {:?}",
            [kh, kw],
            p.dilation,
            p.padding
        )));
    };
    let g = Geom { n, cx: c_in, hx: h, wx: w, cy: c_out, hy: oh, wy: ow, k: [kh, kw], s: p.stride, p: p.padding, d: p.dilation };
    if [n, c_in, h, w].contains(&0) {
        return Err(Error::Shape(format!("{op}: x {x_shape:?} is empty")));
    }
    Ok(g)
}

fn expect_shape(t: &Tensor, want: &[usize], what: &str, op: &str) -> Result<()> {
    if t.shape() != want {
        return Err(Error::Shape(format!("{op}: {what} is {:?} but must be {want:?}", t.shape())));
    }
    Ok(())
}

/// y = conv2d(x, w) + bias.
/// x: [batch, in_c, height, width], w: [out_c, in_c, kh, kw], bias: [out_c];
/// returns [batch, out_c, out_h, out_w] with out = floor((in + 2p - d(k-1) - 1)/s) + 1.
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &Conv2dParams) -> Result<Tensor> {
    conv2d_fused(x, w, bias, Epilogue::Identity, p)
}

/// y = epilogue(conv2d(x, w) + bias), in one dispatch (plus the lavapipe path's pad and crop).
/// Shapes as [`conv2d`]; the backward of the epilogue is the elementwise leaky-ReLU backward
/// evaluated at y (see [`Epilogue::LeakyRelu`]).
pub fn conv2d_fused(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, epi: Epilogue, p: &Conv2dParams) -> Result<Tensor> {
    let op = "conv2d";
    epi.check(op)?;
    expect_f32_4d(x, "x", op)?;
    expect_f32_4d(w, "weight", op)?;
    x.expect_same_context(w, op)?;
    let g = geometry(op, x.shape(), w.shape(), p)?;
    if let Some(b) = bias {
        expect_shape(b, &[g.cy], "bias", op)?;
        x.expect_same_context(b, op)?;
    }
    direct(x, w, bias, epi, &g, p.variant)
}

/// gx = d(sum(y * gy)) / dx: the transposed conv of gy with w.
/// gy: [batch, out_c, out_h, out_w], w: [out_c, in_c, kh, kw], x_shape: [batch, in_c, height, width].
pub fn conv2d_backward_data(gy: &Tensor, w: &Tensor, x_shape: &[usize], p: &Conv2dParams) -> Result<Tensor> {
    let op = "conv2d backward-data";
    expect_f32_4d(gy, "gy", op)?;
    expect_f32_4d(w, "weight", op)?;
    gy.expect_same_context(w, op)?;
    let g = geometry(op, x_shape, w.shape(), p)?;
    expect_shape(gy, &[g.n, g.cy, g.hy, g.wy], "gy", op)?;
    transposed_map(gy, w, None, Epilogue::Identity, &g.swapped(), p.variant)
}

/// The transposed map of geometry `g` (source x, w [cx, cy, kh, kw]): conv2d's backward-data and
/// conv_transpose2d's forward. At unit stride, y[m, i] = sum_{c, k} x[c, i + p - k*d] w[c, m, k] =
/// sum_{c, k'} x[c, i - p' + k'*d] w[c, m, K-1-k'] with k' = K-1-k and p' = d(K-1) - p: a direct
/// conv of x with the flipped, transposed weights, which every variant runs faster than the
/// transposed map (no divisibility tests per tap; on lavapipe, vec4 loads of 16-column windows:
/// llvmpipe, 2 cores, 3x3 transposed convs at batch 32, 64 -> 32 channels, 16 wide 18.6 ms
/// transposed, 13.2 direct; 32 wide 38.5 / 26.9; the Fashion-MNIST LeNet's 5x5 backward-data at
/// 14 wide 42 / 11; only 8-wide rows measured the other way, 16.9 / 19.3).
pub(crate) fn transposed_map(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, epi: Epilogue, g: &Geom, v: Variant) -> Result<Tensor> {
    let flip_pad = [0, 1].map(|a| (g.d[a] * (g.k[a] - 1)).checked_sub(g.p[a]));
    if let ([1, 1], [Some(ph), Some(pw)]) = (g.s, flip_pad) {
        let wf = Tensor::uninit(x.context(), &[g.cy, g.cx, g.k[0], g.k[1]], DType::F32)?;
        // flip_weights reads w as [cy, cx, ..] of the direct map it undoes: this map swapped.
        let params = Params { len: wf.numel() as u32, ..g.swapped().params() };
        x.context().dispatch(&FLIP_WEIGHTS, &params, &[w.binding(), wf.binding()], grid_1d(wf.numel(), WG_1D))?;
        return direct(x, &wf, bias, epi, &Geom { p: [ph, pw], ..*g }, v);
    }
    transposed(x, w, bias, epi, g, v)
}

/// gw = d(sum(y * gy)) / dw = sum over batch and output pixels of gy times the input patch.
/// x: [batch, in_c, height, width], gy: [batch, out_c, out_h, out_w], w_shape: [out_c, in_c, kh, kw].
pub fn conv2d_backward_weight(x: &Tensor, gy: &Tensor, w_shape: &[usize], p: &Conv2dParams) -> Result<Tensor> {
    let op = "conv2d backward-weight";
    expect_f32_4d(x, "x", op)?;
    expect_f32_4d(gy, "gy", op)?;
    x.expect_same_context(gy, op)?;
    let g = geometry(op, x.shape(), w_shape, p)?;
    expect_shape(gy, &[g.n, g.cy, g.hy, g.wy], "gy", op)?;
    weight_grad(x, gy, &g, p.variant)
}

/// gb = sum of gy over batch, height and width. gy: [batch, out_c, out_h, out_w] -> [out_c].
pub fn conv2d_backward_bias(gy: &Tensor) -> Result<Tensor> {
    expect_f32_4d(gy, "gy", "conv2d backward-bias")?;
    bias_grad(gy)
}

/// Plain-Rust f64 reference of conv2d and its backward, straight from the definitions.
pub mod cpu {
    use super::{conv_out_size, Conv2dParams, Epilogue};

    /// Applies the epilogue's activation in place.
    pub fn epilogue(y: &mut [f64], e: Epilogue) {
        if let Epilogue::LeakyRelu(s) = e {
            for v in y.iter_mut().filter(|v| **v <= 0.0) {
                *v *= s as f64;
            }
        }
    }

    /// Input index of output position `o` at tap `k`, if inside: o*s - p + k*d.
    fn src(o: usize, k: usize, s: usize, p: usize, d: usize, len: usize) -> Option<usize> {
        let i = (o * s + k * d) as i64 - p as i64;
        (i >= 0 && (i as usize) < len).then_some(i as usize)
    }

    /// Calls `f(x index, w index, y index)` for every contributing (input, weight, output) triple.
    fn for_each(xs: [usize; 4], ws: [usize; 4], p: &Conv2dParams, mut f: impl FnMut(usize, usize, usize)) -> [usize; 4] {
        let [n, ci, h, w] = xs;
        let [co, _, kh, kw] = ws;
        let oh = conv_out_size(h, kh, p.stride[0], p.padding[0], p.dilation[0]).expect("kernel fits");
        let ow = conv_out_size(w, kw, p.stride[1], p.padding[1], p.dilation[1]).expect("kernel fits");
        for b in 0..n {
            for o in 0..co {
                for y in 0..oh {
                    for x in 0..ow {
                        let yi = ((b * co + o) * oh + y) * ow + x;
                        for c in 0..ci {
                            for ky in 0..kh {
                                let Some(iy) = src(y, ky, p.stride[0], p.padding[0], p.dilation[0], h) else { continue };
                                for kx in 0..kw {
                                    let Some(ix) = src(x, kx, p.stride[1], p.padding[1], p.dilation[1], w) else { continue };
                                    f(((b * ci + c) * h + iy) * w + ix, ((o * ci + c) * kh + ky) * kw + kx, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
        [n, co, oh, ow]
    }

    /// y = conv2d(x, w) + bias; returns y and its shape.
    pub fn conv2d(x: &[f64], xs: [usize; 4], w: &[f64], ws: [usize; 4], bias: Option<&[f64]>, p: &Conv2dParams) -> (Vec<f64>, [usize; 4]) {
        let shape = for_each(xs, ws, p, |_, _, _| {});
        let plane = shape[2] * shape[3];
        let mut y: Vec<f64> = (0..shape.iter().product()).map(|i| bias.map_or(0.0, |b| b[(i / plane) % shape[1]])).collect();
        for_each(xs, ws, p, |xi, wi, yi| y[yi] += x[xi] * w[wi]);
        (y, shape)
    }

    /// (gx, gw, gb) for upstream gradient gy.
    pub fn conv2d_backward(x: &[f64], xs: [usize; 4], w: &[f64], ws: [usize; 4], gy: &[f64], p: &Conv2dParams) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
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

/// Every variant a test forces, so that each kernel family is checked against the CPU reference.
#[cfg(test)]
pub(crate) const ALL_VARIANTS: [Variant; 4] = [Variant::Registers, Variant::Subgroup, Variant::Tiled, Variant::TiledWide];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// The zero-padded copy, by value (`pad`, odd widths) and by vec4 (`pad4`, widths a multiple
    /// of 4), against a plain loop: exact, it only moves values.
    #[test]
    fn padded_copies_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(31);
        let (n, c, h, w) = (2, 3, 5, 7);
        let x = to_f32(&rng.vec(n * c * h * w, -1.0, 1.0));
        let xt = Tensor::from_slice(&ctx, &[n, c, h, w], &x).unwrap();
        for (top, left, hp, wp) in [(1, 2, 8, 11), (1, 2, 8, 12), (0, 0, 5, 8), (2, 1, 9, 9), (0, 3, 6, 20)] {
            let got = padded(&xt, top, left, hp, wp).unwrap().to_vec().unwrap();
            let mut want = vec![0.0f32; n * c * hp * wp];
            for p in 0..n * c {
                for r in 0..h {
                    for col in 0..w {
                        want[(p * hp + r + top) * wp + col + left] = x[(p * h + r) * w + col];
                    }
                }
            }
            assert_eq!(got, want, "top {top} left {left} to {hp} x {wp}");
        }
    }

    /// (x shape, out channels, kernel, stride, padding, dilation, bias): odd channel counts and
    /// sizes, batches and widths that do not fill a block, strides 2 and 3, dilation 2, and more
    /// than 64 output channels (a second tile of the tiled variant).
    type Case = ([usize; 4], usize, [usize; 2], [usize; 2], [usize; 2], [usize; 2], bool);
    fn cases() -> Vec<Case> {
        vec![
            ([2, 3, 7, 9], 5, [3, 3], [1, 1], [1, 1], [1, 1], true),
            ([3, 5, 11, 10], 7, [3, 2], [2, 3], [1, 0], [1, 1], true),
            ([1, 7, 13, 9], 3, [3, 3], [3, 2], [2, 1], [2, 2], false),
            ([5, 1, 10, 10], 9, [4, 4], [2, 2], [1, 1], [1, 1], true),
            ([2, 3, 6, 19], 67, [1, 3], [1, 2], [0, 2], [1, 2], true),
            ([1, 2, 5, 5], 3, [5, 5], [1, 1], [2, 2], [1, 1], false),
            // rows wider than two 16-column blocks, stride 1 (the sliding-window path)
            ([2, 3, 4, 37], 5, [3, 5], [1, 1], [1, 2], [1, 1], true),
            // kernel 9 wide at unit width stride: the vec4 lookahead of direct_reg_s1 is reloaded twice
            ([2, 2, 6, 21], 6, [2, 9], [2, 1], [1, 4], [1, 1], true),
            // width stride 2, two 16-column blocks, 7 taps: both phases of direct_reg_s2 reload
            ([2, 2, 5, 41], 5, [3, 7], [1, 2], [1, 3], [1, 1], true),
            // width stride 2 with at most 4 output channels (the 4-channel kernel), output width 7: cropped
            ([1, 3, 6, 14], 2, [3, 4], [1, 2], [1, 1], [1, 1], false),
            // input channels a multiple of 8 and destination rows of 8+ vec4s: the subgroup
            // weight-gradient kernels share gy over a subgroup (3x3, 4x4 stride 2), with a
            // partial run of 8 blocks at the row's end
            ([2, 16, 6, 37], 6, [3, 3], [1, 1], [1, 1], [1, 1], true),
            ([1, 8, 5, 36], 5, [5, 5], [1, 1], [2, 2], [1, 1], false),
            ([1, 16, 9, 70], 9, [4, 4], [2, 2], [1, 1], [1, 1], true),
            // 17 to 32 output channels (the tiled variant's 32-row tile), with and without stride
            ([2, 3, 9, 11], 29, [3, 3], [1, 1], [1, 1], [1, 1], true),
            ([3, 4, 12, 10], 20, [3, 3], [2, 2], [1, 1], [1, 1], false),
            // 1x1 kernels at unit width stride (wgrad_reg_k1), a partial block of 4 input channels
            ([2, 6, 5, 7], 9, [1, 1], [1, 1], [0, 0], [1, 1], true),
            // unit stride on 6-wide rows (the flat-plane forward), 3-wide kernel, row dilation 2
            ([3, 4, 8, 6], 6, [3, 3], [1, 1], [2, 1], [2, 1], true),
            // pointwise 1x1 maps run on planes joined into one row: 20 pixels (a multiple of 4
            // although the 5-wide rows are not), 11 output channels (a partial 8-channel block)
            ([3, 5, 4, 5], 11, [1, 1], [1, 1], [0, 0], [2, 2], true),
            ([2, 6, 5, 7], 9, [1, 1], [2, 1], [1, 0], [1, 1], false),
            // pointwise with input channels a multiple of 4 (lavapipe: the matmul path, rows padded
            // from 35 to 36 then cropped with bias and activation); 4 -> 12 on 9-pixel planes runs
            // its backward-data through it too, and 8 -> 4 on 20-pixel planes needs no padding
            ([3, 8, 5, 7], 6, [1, 1], [1, 1], [0, 0], [1, 1], true),
            ([2, 4, 3, 3], 12, [1, 1], [1, 1], [0, 0], [1, 1], false),
            ([2, 8, 4, 5], 4, [1, 1], [1, 1], [0, 0], [1, 1], true),
            // 5x5 with 64 input channels x 4 output blocks: the all-taps weight gradient
            // (wgrad_reg_s1_k5), a partial block of 4 output channels, then row stride and dilation
            ([2, 64, 7, 6], 15, [5, 5], [1, 1], [2, 2], [1, 1], true),
            ([2, 64, 9, 5], 13, [5, 5], [2, 1], [2, 2], [2, 1], false),
            // 3x3 the same way (wgrad_reg_s1_k3): 37 input channels x 7 output blocks, 7-wide rows
            ([2, 37, 6, 7], 26, [3, 3], [1, 1], [1, 1], [1, 1], true),
            ([1, 40, 9, 6], 27, [3, 3], [2, 1], [1, 1], [2, 1], false),
            // 4x4 stride 2 with 33 input channels x 8 output blocks of 8: the all-taps weight
            // gradient (wgrad_reg_s2_k4), odd sizes (output 6 wide, padded to 8; 61 channels)
            ([2, 33, 13, 12], 61, [4, 4], [2, 2], [1, 1], [1, 1], true),
            ([1, 64, 9, 15], 29, [4, 4], [2, 2], [2, 0], [1, 1], false),
            // row dilation with unit width stride (wgrad_reg_s1 steps rows by dh)
            ([2, 3, 9, 10], 5, [3, 3], [1, 1], [2, 1], [2, 1], true),
        ]
    }

    struct Data {
        x: Vec<f64>,
        w: Vec<f64>,
        b: Vec<f64>,
        gy: Vec<f64>,
        ws: [usize; 4],
        ys: [usize; 4],
        p: Conv2dParams,
    }

    fn data(c: &Case, seed: u64) -> Data {
        let (xs, co, k, s, pad, d, _) = *c;
        let mut rng = TestRng::new(seed);
        let ws = [co, xs[1], k[0], k[1]];
        let p = Conv2dParams::new(s, pad, d);
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -1.0, 1.0);
        let b = rng.vec(co, -1.0, 1.0);
        let (_, ys) = cpu::conv2d(&x, xs, &w, ws, None, &p);
        let gy = rng.vec(ys.iter().product(), -1.0, 1.0);
        Data { x, w, b, gy, ws, ys, p }
    }

    // Tolerance: f32 sums of up to ~100 (forward, backward-data) or ~700 (weight and bias
    // gradients) products of values in [-1, 1]; rounding grows like sqrt(terms) * 6e-8 * |sum of
    // magnitudes| < 1e-4, so atol 2e-4 + rtol 1e-4 passes every correct order of summation while
    // any wrong tap (an error of order 0.1 or more) fails.
    const ATOL: f64 = 2e-4;
    const RTOL: f64 = 1e-4;

    #[test]
    fn forward_matches_cpu_for_both_variants() {
        let ctx = gpu_or_skip!();
        for (ci, c) in cases().iter().enumerate() {
            let d = data(c, 10 + ci as u64);
            let want = cpu::conv2d(&d.x, c.0, &d.w, d.ws, c.6.then_some(&d.b[..]), &d.p).0;
            let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
            let w = Tensor::from_slice(&ctx, &d.ws, &to_f32(&d.w)).unwrap();
            let b = Tensor::from_slice(&ctx, &[c.1], &to_f32(&d.b)).unwrap();
            for v in ALL_VARIANTS {
                let y = conv2d(&x, &w, c.6.then_some(&b), &d.p.with_variant(v)).unwrap();
                assert_eq!(y.shape(), &d.ys);
                assert_close(&format!("conv2d {c:?} {v:?}"), &y.to_vec().unwrap(), &want, ATOL, RTOL);
            }
        }
    }

    /// Every case with the leaky-ReLU epilogue (slope 0.2, or 0 = ReLU on every other case):
    /// each store path of both variants, including the padded-row kernels whose rows are cropped.
    #[test]
    fn fused_epilogue_matches_cpu_for_both_variants() {
        let ctx = gpu_or_skip!();
        for (ci, c) in cases().iter().enumerate() {
            let d = data(c, 10 + ci as u64);
            let epi = Epilogue::LeakyRelu([0.2, 0.0][ci % 2]);
            let mut want = cpu::conv2d(&d.x, c.0, &d.w, d.ws, c.6.then_some(&d.b[..]), &d.p).0;
            cpu::epilogue(&mut want, epi);
            let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
            let w = Tensor::from_slice(&ctx, &d.ws, &to_f32(&d.w)).unwrap();
            let b = Tensor::from_slice(&ctx, &[c.1], &to_f32(&d.b)).unwrap();
            for v in ALL_VARIANTS {
                let y = conv2d_fused(&x, &w, c.6.then_some(&b), epi, &d.p.with_variant(v)).unwrap();
                assert_close(&format!("conv2d {c:?} {epi:?} {v:?}"), &y.to_vec().unwrap(), &want, ATOL, RTOL);
            }
        }
        let x = Tensor::zeros(&ctx, &[1, 1, 3, 3]).unwrap();
        let w = Tensor::zeros(&ctx, &[1, 1, 1, 1]).unwrap();
        for bad in [-0.1, f32::NAN] {
            let err = conv2d_fused(&x, &w, None, Epilogue::LeakyRelu(bad), &Conv2dParams::default()).unwrap_err().to_string();
            assert!(err.contains("slope") && err.contains(&bad.to_string()), "{err}");
        }
    }

    #[test]
    fn backward_matches_cpu_for_both_variants() {
        let ctx = gpu_or_skip!();
        for (ci, c) in cases().iter().enumerate() {
            let d = data(c, 20 + ci as u64);
            let (gx_ref, gw_ref, gb_ref) = cpu::conv2d_backward(&d.x, c.0, &d.w, d.ws, &d.gy, &d.p);
            let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
            let w = Tensor::from_slice(&ctx, &d.ws, &to_f32(&d.w)).unwrap();
            let gy = Tensor::from_slice(&ctx, &d.ys, &to_f32(&d.gy)).unwrap();
            for v in ALL_VARIANTS {
                let p = d.p.with_variant(v);
                let gx = conv2d_backward_data(&gy, &w, &c.0, &p).unwrap();
                assert_close(&format!("conv2d gx {c:?} {v:?}"), &gx.to_vec().unwrap(), &gx_ref, ATOL, RTOL);
                let gw = conv2d_backward_weight(&x, &gy, &d.ws, &p).unwrap();
                assert_close(&format!("conv2d gw {c:?} {v:?}"), &gw.to_vec().unwrap(), &gw_ref, ATOL, RTOL);
            }
            let gb = conv2d_backward_bias(&gy).unwrap();
            assert_close(&format!("conv2d gb {c:?}"), &gb.to_vec().unwrap(), &gb_ref, ATOL, RTOL);
        }
    }

    /// Batches that leave most of a 64-wide workgroup idle and a reduction long enough to split.
    /// The bias gradient split over sample chunks (a GPU's path) and summed after, against the
    /// CPU reference: 3 leaves a shorter last chunk of the 9 samples, 9 gives one sample each.
    #[test]
    fn bias_gradient_splits_over_samples() {
        let ctx = gpu_or_skip!();
        let c: Case = ([9, 2, 17, 15], 6, [3, 3], [1, 2], [1, 1], [1, 1], true);
        let d = data(&c, 6);
        let (_, _, gb_ref) = cpu::conv2d_backward(&d.x, c.0, &d.w, d.ws, &d.gy, &d.p);
        let gy = Tensor::from_slice(&ctx, &d.ys, &to_f32(&d.gy)).unwrap();
        for splits in [None, Some(1), Some(3), Some(4), Some(9), Some(40)] {
            let gb = bias_grad_split(&gy, splits).unwrap();
            // ~1000 terms per sum, as the weight gradient's.
            assert_close(&format!("gb splits {splits:?}"), &gb.to_vec().unwrap(), &gb_ref, 5e-4, RTOL);
        }
    }

    #[test]
    fn weight_gradient_splits_long_reductions() {
        let ctx = gpu_or_skip!();
        let c: Case = ([9, 2, 17, 15], 6, [3, 3], [1, 2], [1, 1], [1, 1], false);
        let d = data(&c, 5);
        let (_, gw_ref, _) = cpu::conv2d_backward(&d.x, c.0, &d.w, d.ws, &d.gy, &d.p);
        let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
        let gy = Tensor::from_slice(&ctx, &d.ys, &to_f32(&d.gy)).unwrap();
        for v in ALL_VARIANTS {
            let gw = conv2d_backward_weight(&x, &gy, &d.ws, &d.p.with_variant(v)).unwrap();
            // ~1200 terms per sum: atol scaled up from ATOL accordingly.
            assert_close(&format!("gw {v:?}"), &gw.to_vec().unwrap(), &gw_ref, 5e-4, RTOL);
        }
    }

    /// 256x256x3x3 weights over 64 destination rows: 64 partial sums would need 151 MB, over
    /// the 128 MiB binding limit of the baseline limits, so the split count must shrink.
    #[test]
    fn weight_gradient_partials_fit_one_binding() {
        let ctx = gpu_or_skip!();
        let c: Case = ([16, 256, 4, 4], 256, [3, 3], [1, 1], [1, 1], [1, 1], false);
        let d = data(&c, 11);
        let (_, gw_ref, _) = cpu::conv2d_backward(&d.x, c.0, &d.w, d.ws, &d.gy, &d.p);
        let x = Tensor::from_slice(&ctx, &c.0, &to_f32(&d.x)).unwrap();
        let gy = Tensor::from_slice(&ctx, &d.ys, &to_f32(&d.gy)).unwrap();
        for v in ALL_VARIANTS {
            let gw = conv2d_backward_weight(&x, &gy, &d.ws, &d.p.with_variant(v)).unwrap();
            // ~250 terms per sum: the same tolerance as the long reductions above.
            assert_close(&format!("gw {v:?}"), &gw.to_vec().unwrap(), &gw_ref, 5e-4, RTOL);
        }
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        // d/dx sum(y * gy) = transposed conv of gy; d/dw = correlation of gy with x; d/db = sum gy.
        for c in [
            ([2, 2, 5, 6], 3, [3, 2], [2, 1], [1, 1], [1, 2], true),
            ([1, 3, 7, 5], 2, [2, 3], [3, 2], [0, 2], [2, 1], true),
        ] {
            let c: Case = c;
            let d = data(&c, 77);
            let (gx, gw, gb) = cpu::conv2d_backward(&d.x, c.0, &d.w, d.ws, &d.gy, &d.p);
            let fx = |x: &[f64]| cpu::conv2d(x, c.0, &d.w, d.ws, Some(&d.b), &d.p).0;
            let fw = |w: &[f64]| cpu::conv2d(&d.x, c.0, w, d.ws, Some(&d.b), &d.p).0;
            let fb = |b: &[f64]| cpu::conv2d(&d.x, c.0, &d.w, d.ws, Some(b), &d.p).0;
            assert_close_f64("gx", &gx, &numeric_vjp(fx, &d.x, &d.gy, 1e-6), 1e-7, 1e-6);
            assert_close_f64("gw", &gw, &numeric_vjp(fw, &d.w, &d.gy, 1e-6), 1e-7, 1e-6);
            assert_close_f64("gb", &gb, &numeric_vjp(fb, &d.b, &d.gy, 1e-6), 1e-7, 1e-6);
        }
    }

    #[test]
    fn bad_shapes_are_named_in_errors() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[2, 3, 8, 8]).unwrap();
        let w = Tensor::zeros(&ctx, &[4, 5, 3, 3]).unwrap();
        let err = conv2d(&x, &w, None, &Conv2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("[4, 5, 3, 3]") && err.contains("[2, 3, 8, 8]"), "{err}");

        let w = Tensor::zeros(&ctx, &[4, 3, 9, 3]).unwrap();
        let err = conv2d(&x, &w, None, &Conv2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("[9, 3]") && err.contains("[2, 3, 8, 8]"), "{err}");

        let w = Tensor::zeros(&ctx, &[4, 3, 3, 3]).unwrap();
        let b = Tensor::zeros(&ctx, &[5]).unwrap();
        let err = conv2d(&x, &w, Some(&b), &Conv2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("bias") && err.contains("[5]") && err.contains("[4]"), "{err}");

        let err = conv2d(&x, &w, None, &Conv2dParams::new([0, 1], [0, 0], [1, 1])).unwrap_err().to_string();
        assert!(err.contains("stride [0, 1]"), "{err}");

        let gy = Tensor::zeros(&ctx, &[2, 4, 5, 6]).unwrap();
        let err = conv2d_backward_data(&gy, &w, &[2, 3, 8, 8], &Conv2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("[2, 4, 5, 6]") && err.contains("[2, 4, 6, 6]"), "{err}");
        let err = conv2d_backward_weight(&x, &gy, &[4, 3, 3, 3], &Conv2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("[2, 4, 5, 6]") && err.contains("[2, 4, 6, 6]"), "{err}");
        let err = conv2d_backward_bias(&Tensor::zeros(&ctx, &[4, 5]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("[4, 5]"), "{err}");
    }
}
