
// ---------------------------------------------------------------------------------------------
// How the register kernels' lanes load the values they all need: each its own. Appended to
// conv2d.wgsl for the plain module; conv2d_subgroup.wgsl defines the same functions with
// subgroup operations (one load per subgroup, handed round), so one kernel source serves both.

// This lane's index among the lanes that share loads (unused here).
fn load_lane() -> u32 {
    return 0u;
}

// Whether an invocation leaves at once: here each lane past the end leaves by itself.
fn lanes_done(past_end: bool) -> bool {
    return past_end;
}

// direct_reg_s1_r8 / direct_reg_s2_r8: a row of taps' packed weights (nothing is held here) and
// tap kx's two vec4s of it, loaded where used. k: the row's first tap.
struct RowWeights { lo: vec4<f32>, hi: vec4<f32> }

fn d1_row_weights(k: u32, lane: u32) -> RowWeights {
    return RowWeights(vec4<f32>(0.0), vec4<f32>(0.0));
}

fn d1_tap_weights(r: RowWeights, k: u32, kx: u32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(d1_w[k + kx], d1_w[k + kx + p.cx * p.kh * p.kw]);
}

// direct_reg_s1_r16 / _s2_r16: a row of taps' four packed 4-channel blocks (nothing is held
// here) and tap kx's four vec4s of it, loaded where used.
struct RowWeights4 { w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32> }

fn d1_row_weights4(k: u32, lane: u32) -> RowWeights4 {
    return RowWeights4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
}

fn d1_tap_weights4(r: RowWeights4, k: u32, kx: u32) -> array<vec4<f32>, 4> {
    let s = p.cx * p.kh * p.kw;
    return array<vec4<f32>, 4>(d1_w[k + kx], d1_w[k + kx + s], d1_w[k + kx + 2u * s], d1_w[k + kx + 3u * s]);
}

fn d2_row_weights(k: u32, lane: u32) -> RowWeights {
    return RowWeights(vec4<f32>(0.0), vec4<f32>(0.0));
}

fn d2_tap_weights(r: RowWeights, k: u32, kx: u32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(d2_w[k + kx], d2_w[k + kx + p.cx * p.kh * p.kw]);
}

fn d2_row_weights4(k: u32, lane: u32) -> RowWeights4 {
    return RowWeights4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
}

fn d2_tap_weights4(r: RowWeights4, k: u32, kx: u32) -> array<vec4<f32>, 4> {
    let s = p.cx * p.kh * p.kw;
    return array<vec4<f32>, 4>(d2_w[k + kx], d2_w[k + kx + s], d2_w[k + kx + 2u * s], d2_w[k + kx + 3u * s]);
}

// transposed_reg: a run of 8 source channels' weights of tap k (nothing is held here) and source
// channel cb + j's 8 output channels' weights, loaded where used.
fn tr_run_weights(cb: u32, lane: u32, m0: u32, k: u32) -> RowWeights {
    return RowWeights(vec4<f32>(0.0), vec4<f32>(0.0));
}

fn tr_channel_weights(r: RowWeights, cb: u32, j: u32, m0: u32, k: u32) -> array<vec4<f32>, 2> {
    return tr_w8(cb + j, m0, k);
}

// transposed_reg16: as tr_run_weights / tr_channel_weights for 16 output channels.
fn tr_run_weights16(cb: u32, lane: u32, m0: u32, k: u32) -> RowWeights4 {
    return RowWeights4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
}

fn tr_channel_weights16(r: RowWeights4, cb: u32, j: u32, m0: u32, k: u32) -> array<vec4<f32>, 4> {
    let lo = tr_w8(cb + j, m0, k);
    let hi = tr_w8(cb + j, m0 + 8u, k);
    return array<vec4<f32>, 4>(lo[0], lo[1], hi[0], hi[1]);
}

// The all-taps weight-gradient kernels: gy blocks q of four output channels' rows g (vec4 units),
// loaded where used. `key` names the lane's (split, output block).
struct GyRun { unused: u32 }

fn gy_run_start(key: u32) -> GyRun {
    return GyRun(0u);
}

fn gy_blocks(run: ptr<function, GyRun>, g: vec4<u32>, q: u32, q_end: u32, lane: u32, group: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(w4_gy[g.x + q], w4_gy[g.y + q], w4_gy[g.z + q], w4_gy[g.w + q]);
}

// transposed_s2k4: a source channel's weights (nothing is held here) and output channel m0 + j's
// 16 taps of it (4 vec4s, tap row ky in [ky]), loaded where used.
fn u4_channel_weights(c: u32, m0: u32, lane: u32) -> RowWeights4 {
    return RowWeights4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
}

fn u4_weights(r: RowWeights4, c: u32, m0: u32, j: u32) -> array<vec4<f32>, 4> {
    let q = (c * p.cy + min(m0 + j, p.cy - 1u)) * 4u;
    return array<vec4<f32>, 4>(u4_w[q], u4_w[q + 1u], u4_w[q + 2u], u4_w[q + 3u]);
}
