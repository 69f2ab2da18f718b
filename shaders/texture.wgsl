// Texture I/O of embedded detection: a host's texture into a model input tensor, and a per-pixel
// map tensor back into a host texture as a colour-mapped heatmap. CPU reference:
// kernels/src/texture.rs.
//
// Resampling, both ways, is the data pipeline's resize (src/data/transforms.rs `resize`, PIL's
// antialiased bilinear): for output index i of an axis `inp -> out`, scale s = inp / out,
// filter scale f = max(s, 1), centre c = (i + 0.5) s, taps j in [floor(c - f), ceil(c + f))
// clipped to the input, weight max(0, 1 - |j + 0.5 - c| / f), normalised to sum 1. When
// upscaling (f = 1) this is exactly bilinear with align_corners = false (PyTorch's
// F.interpolate), edges included; when shrinking it averages every input pixel.

struct ReadParams {
    src_w: u32,
    src_h: u32,
    dst_w: u32,
    dst_h: u32,
    channels: u32, // model input channels: 1 or 3
    single: u32,   // 1: the texture has one channel (r8unorm), repeated to every model channel
    srgb: u32,     // 1: textureLoad decoded sRGB; re-encode, as the CPU path reads the stored bytes
    pad0: u32,
    mean: vec4<f32>,
    stdev: vec4<f32>,
}

struct WriteParams {
    src_w: u32,     // map width
    src_h: u32,     // map height
    dst_w: u32,     // texture width
    dst_h: u32,     // texture height
    plane: u32,     // offset of the map plane in the tensor (image index * h * w)
    format: u32,    // packed output: 0 rgba8, 1 bgra8, 2 r8
    row_words: u32, // packed output: u32 words per padded texture row
    pad0: u32,
    lo: f32,        // map value shown as the colormap's start, transparent
    hi: f32,        // map value shown as the colormap's end, at full `opacity`
    opacity: f32,
    pad1: f32,
}

struct Axis {
    lo: u32,
    hi: u32,
    centre: f32,
    fscale: f32,
}

fn axis(i: u32, inp: u32, out: u32) -> Axis {
    // (2i + 1) inp / (2 out): one rounding, as exact as the f64 reference for sizes below 2^23.
    let centre = f32((2u * i + 1u) * inp) / f32(2u * out);
    let fscale = max(f32(inp) / f32(out), 1.0);
    var a: Axis;
    a.lo = u32(max(floor(centre - fscale), 0.0));
    a.hi = min(u32(ceil(centre + fscale)), inp);
    a.centre = centre;
    a.fscale = fscale;
    return a;
}

fn tap(a: Axis, j: u32) -> f32 {
    return max(1.0 - abs((f32(j) + 0.5 - a.centre) / a.fscale), 0.0);
}

// IEC 61966-2-1 sRGB encoding of a linear value.
fn srgb_encode(v: f32) -> f32 {
    if (v <= 0.0031308) { return 12.92 * v; }
    return 1.055 * pow(v, 1.0 / 2.4) - 0.055;
}

@group(0) @binding(0) var<uniform> rp: ReadParams;
@group(0) @binding(1) var rd_src: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> rd_out: array<f32>;

// One thread per output pixel: out [1, channels, dst_h, dst_w], z-scored per channel.
@compute @workgroup_size(8, 8)
fn read_texture(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= rp.dst_w || y >= rp.dst_h) { return; }
    let ax = axis(x, rp.src_w, rp.dst_w);
    let ay = axis(y, rp.src_h, rp.dst_h);
    var acc = vec3<f32>(0.0);
    var wsum_y = 0.0;
    var wsum_x = 0.0;
    for (var j = ax.lo; j < ax.hi; j = j + 1u) {
        wsum_x = wsum_x + tap(ax, j);
    }
    for (var i = ay.lo; i < ay.hi; i = i + 1u) {
        let wy = tap(ay, i);
        wsum_y = wsum_y + wy;
        if (wy == 0.0) { continue; }
        var row = vec3<f32>(0.0);
        for (var j = ax.lo; j < ax.hi; j = j + 1u) {
            var t = textureLoad(rd_src, vec2<i32>(i32(j), i32(i)), 0).rgb;
            if (rp.srgb == 1u) {
                t = vec3<f32>(srgb_encode(t.r), srgb_encode(t.g), srgb_encode(t.b));
            }
            row = row + tap(ax, j) * t;
        }
        acc = acc + wy * row;
    }
    let rgb = acc / (wsum_y * wsum_x);
    let plane = rp.dst_w * rp.dst_h;
    let at = y * rp.dst_w + x;
    if (rp.single == 1u) {
        for (var c = 0u; c < rp.channels; c = c + 1u) {
            rd_out[c * plane + at] = (rgb.r - rp.mean[c]) / rp.stdev[c];
        }
    } else if (rp.channels == 1u) {
        // ITU-R BT.601 luma, as data::transforms::grayscale (resize and grayscale commute).
        let g = 0.299 * rgb.r + 0.587 * rgb.g + 0.114 * rgb.b;
        rd_out[at] = (g - rp.mean[0]) / rp.stdev[0];
    } else {
        for (var c = 0u; c < 3u; c = c + 1u) {
            rd_out[c * plane + at] = (rgb[c] - rp.mean[c]) / rp.stdev[c];
        }
    }
}

// matplotlib's magma (BIDS colormaps, CC0) at entries 0, 16, ..., 240, 255 of its 256-entry
// table, taken as evenly spaced and interpolated linearly. The values are sRGB display colours.
const MAGMA = array<vec3<f32>, 17>(
    vec3<f32>(0.001462, 0.000466, 0.013866),
    vec3<f32>(0.039608, 0.031090, 0.133515),
    vec3<f32>(0.113094, 0.065492, 0.276784),
    vec3<f32>(0.211718, 0.061992, 0.418647),
    vec3<f32>(0.316654, 0.071690, 0.485380),
    vec3<f32>(0.414709, 0.110431, 0.504662),
    vec3<f32>(0.512831, 0.148179, 0.507648),
    vec3<f32>(0.613617, 0.181811, 0.498536),
    vec3<f32>(0.716387, 0.214982, 0.475290),
    vec3<f32>(0.816914, 0.255895, 0.436461),
    vec3<f32>(0.904281, 0.319610, 0.388137),
    vec3<f32>(0.960949, 0.418323, 0.359630),
    vec3<f32>(0.986700, 0.535582, 0.382210),
    vec3<f32>(0.996096, 0.653659, 0.446213),
    vec3<f32>(0.996898, 0.769591, 0.534892),
    vec3<f32>(0.992440, 0.884330, 0.640099),
    vec3<f32>(0.987053, 0.991438, 0.749504),
);

fn magma(t: f32) -> vec3<f32> {
    let u = clamp(t, 0.0, 1.0) * 16.0;
    let k = min(u32(u), 15u);
    return mix(MAGMA[k], MAGMA[k + 1u], u - f32(k));
}

@group(0) @binding(0) var<uniform> wp: WriteParams;
@group(0) @binding(1) var<storage, read> wr_map: array<f32>;

// The map resampled to texture pixel (x, y), scaled to [0, 1] by the caller's value range.
fn level(x: u32, y: u32) -> f32 {
    let ax = axis(x, wp.src_w, wp.dst_w);
    let ay = axis(y, wp.src_h, wp.dst_h);
    var acc = 0.0;
    var wsum_y = 0.0;
    var wsum_x = 0.0;
    for (var j = ax.lo; j < ax.hi; j = j + 1u) {
        wsum_x = wsum_x + tap(ax, j);
    }
    for (var i = ay.lo; i < ay.hi; i = i + 1u) {
        let wy = tap(ay, i);
        wsum_y = wsum_y + wy;
        var row = 0.0;
        for (var j = ax.lo; j < ax.hi; j = j + 1u) {
            row = row + tap(ax, j) * wr_map[wp.plane + i * wp.src_w + j];
        }
        acc = acc + wy * row;
    }
    let v = acc / (wsum_y * wsum_x);
    return clamp((v - wp.lo) / (wp.hi - wp.lo), 0.0, 1.0);
}

fn heat(t: f32) -> vec4<f32> {
    return vec4<f32>(magma(t), wp.opacity * t);
}

@group(0) @binding(2) var wr_dst: texture_storage_2d<rgba8unorm, write>;

// One thread per texel of an rgba8unorm storage texture.
@compute @workgroup_size(8, 8)
fn write_storage(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= wp.dst_w || gid.y >= wp.dst_h) { return; }
    textureStore(wr_dst, vec2<i32>(i32(gid.x), i32(gid.y)), heat(level(gid.x, gid.y)));
}

@group(0) @binding(2) var<storage, read_write> wr_packed: array<u32>;

fn byte(v: f32) -> u32 {
    return u32(floor(clamp(v, 0.0, 1.0) * 255.0 + 0.5));
}

// One thread per u32 word of a buffer laid out for copy_buffer_to_texture (rows padded to 256
// bytes): one rgba8/bgra8 texel or four r8 texels per word, little-endian; padding words are 0.
@compute @workgroup_size(64)
fn write_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = gid.y * nwg.x * 64u + gid.x;
    if (w >= wp.row_words * wp.dst_h) { return; }
    let y = w / wp.row_words;
    let col = w % wp.row_words;
    var word = 0u;
    if (wp.format == 2u) {
        for (var k = 0u; k < 4u; k = k + 1u) {
            let x = col * 4u + k;
            if (x < wp.dst_w) {
                word = word | (byte(level(x, y)) << (8u * k));
            }
        }
    } else if (col < wp.dst_w) {
        var c = heat(level(col, y));
        if (wp.format == 1u) { c = c.bgra; }
        word = byte(c.r) | (byte(c.g) << 8u) | (byte(c.b) << 16u) | (byte(c.a) << 24u);
    }
    wr_packed[w] = word;
}
