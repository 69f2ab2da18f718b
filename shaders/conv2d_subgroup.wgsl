
// ---------------------------------------------------------------------------------------------
// For devices with subgroups of 8 or more lanes (lavapipe: one subgroup = one CPU SIMD register
// of 8 invocations). Appended to conv2d.wgsl as a module of its own (conv2d_loads.wgsl's place),
// since naga rejects a module that uses subgroup operations on a device without the SUBGROUP
// feature.

// How the register kernels' lanes load what they all need (see conv2d_loads.wgsl for the plain
// definitions the same kernels use elsewhere): one lane loads, subgroupShuffle hands it round (a
// shuffle costs about a twentieth of a load on llvmpipe). Every lane of a subgroup runs the
// kernels' loops to the end, lanes past the last output on clamped indices without storing, so the
// shuffles stay defined.

// The lane's index in its subgroup: every lane is active where the kernels call this.
fn load_lane() -> u32 {
    return subgroupExclusiveAdd(1u);
}

// A subgroup leaves only when all its lanes are past the end.
fn lanes_done(past_end: bool) -> bool {
    return subgroupAll(past_end);
}

// direct_reg_s1_r8 / _s2_r8, a row of taps (kw <= 8, the host checks): lane l loads tap l's two
// vec4s of packed weights, and tap kx comes from lane kx, so a row costs each lane 2 vec4 loads
// instead of 2 * kw. The weights depend on wid.z and loop counters only: any lane's serve all.
struct RowWeights { lo: vec4<f32>, hi: vec4<f32> }

fn d1_row_weights(k: u32, lane: u32) -> RowWeights {
    let tap = k + min(lane % 8u, p.kw - 1u);
    return RowWeights(d1_w[tap], d1_w[tap + p.cx * p.kh * p.kw]);
}

fn d1_tap_weights(r: RowWeights, k: u32, kx: u32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(subgroupShuffle(r.lo, kx), subgroupShuffle(r.hi, kx));
}

// direct_reg_s1_r16 / _s2_r16, a row of taps (kw <= 8): lane l loads tap l's four vec4s of packed weights
// and tap kx comes from lane kx, as for the 8-channel kernels.
struct RowWeights4 { w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32> }

fn d1_row_weights4(k: u32, lane: u32) -> RowWeights4 {
    let tap = k + min(lane % 8u, p.kw - 1u);
    let s = p.cx * p.kh * p.kw;
    return RowWeights4(d1_w[tap], d1_w[tap + s], d1_w[tap + 2u * s], d1_w[tap + 3u * s]);
}

fn d1_tap_weights4(r: RowWeights4, k: u32, kx: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(subgroupShuffle(r.w0, kx), subgroupShuffle(r.w1, kx),
                               subgroupShuffle(r.w2, kx), subgroupShuffle(r.w3, kx));
}

fn d2_row_weights(k: u32, lane: u32) -> RowWeights {
    let tap = k + min(lane % 8u, p.kw - 1u);
    return RowWeights(d2_w[tap], d2_w[tap + p.cx * p.kh * p.kw]);
}

fn d2_tap_weights(r: RowWeights, k: u32, kx: u32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(subgroupShuffle(r.lo, kx), subgroupShuffle(r.hi, kx));
}

fn d2_row_weights4(k: u32, lane: u32) -> RowWeights4 {
    let tap = k + min(lane % 8u, p.kw - 1u);
    let s = p.cx * p.kh * p.kw;
    return RowWeights4(d2_w[tap], d2_w[tap + s], d2_w[tap + 2u * s], d2_w[tap + 3u * s]);
}

fn d2_tap_weights4(r: RowWeights4, k: u32, kx: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(subgroupShuffle(r.w0, kx), subgroupShuffle(r.w1, kx),
                               subgroupShuffle(r.w2, kx), subgroupShuffle(r.w3, kx));
}

// transposed_reg, a run of 8 source channels (weights depend on wid.z and loop counters only):
// lane l loads channel cb + l's 8 output channels' weights of tap k, and channel cb + j's come
// from lane j.
fn tr_run_weights(cb: u32, lane: u32, m0: u32, k: u32) -> RowWeights {
    let w = tr_w8(cb + lane % 8u, m0, k);
    return RowWeights(w[0], w[1]);
}

fn tr_channel_weights(r: RowWeights, cb: u32, j: u32, m0: u32, k: u32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(subgroupShuffle(r.lo, j), subgroupShuffle(r.hi, j));
}

// transposed_reg16: as tr_run_weights / tr_channel_weights for 16 output channels.
fn tr_run_weights16(cb: u32, lane: u32, m0: u32, k: u32) -> RowWeights4 {
    let lo = tr_w8(cb + lane % 8u, m0, k);
    let hi = tr_w8(cb + lane % 8u, m0 + 8u, k);
    return RowWeights4(lo[0], lo[1], hi[0], hi[1]);
}

fn tr_channel_weights16(r: RowWeights4, cb: u32, j: u32, m0: u32, k: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(subgroupShuffle(r.w0, j), subgroupShuffle(r.w1, j),
                               subgroupShuffle(r.w2, j), subgroupShuffle(r.w3, j));
}

// The all-taps weight-gradient kernels (wgrad_reg_s1_k3, wgrad_reg_s2_k4): lanes are consecutive
// input channels, so where all of a subgroup's lanes belong to one (split, output block) they read
// the same gy. Lane l then loads blocks q + l of a run of 8 and block q comes from lane q % 8:
// 1/8 of the gy loads. A subgroup straddling two pairs loads its own. (wgrad_reg_s1_k5 keeps its
// own loads: with gy shared it measured slower, the CIFAR LeNet's 5x5 layers 177 -> 196 ms on
// llvmpipe, 2 cores, where 3x3 gained 10% and 4x4 stride 2 6%.)
struct GyRun { one_pair: bool, held: array<vec4<f32>, 8> }

fn gy_run_start(key: u32) -> GyRun {
    return GyRun(subgroupAll(key == subgroupBroadcastFirst(key)), array<vec4<f32>, 8>());
}

// Blocks q of four output channels' gy rows g; `group` (0 or 1) picks which held blocks serve them.
fn gy_blocks(run: ptr<function, GyRun>, g: vec4<u32>, q: u32, q_end: u32, lane: u32, group: u32) -> array<vec4<f32>, 4> {
    if (!(*run).one_pair) {
        return array<vec4<f32>, 4>(w4_gy[g.x + q], w4_gy[g.y + q], w4_gy[g.z + q], w4_gy[g.w + q]);
    }
    let j = q % 8u;
    let h = 4u * group;
    if (j == 0u) {
        let qq = min(q + lane % 8u, q_end - 1u);
        (*run).held[h] = w4_gy[g.x + qq];
        (*run).held[h + 1u] = w4_gy[g.y + qq];
        (*run).held[h + 2u] = w4_gy[g.z + qq];
        (*run).held[h + 3u] = w4_gy[g.w + qq];
    }
    return array<vec4<f32>, 4>(subgroupShuffle((*run).held[h], j), subgroupShuffle((*run).held[h + 1u], j),
                               subgroupShuffle((*run).held[h + 2u], j), subgroupShuffle((*run).held[h + 3u], j));
}

// transposed_s2k4: lane l loads output channel m0 + l's 16 taps of source channel c (4 vec4s),
// and channel m0 + j's come from lane j: 4 weight loads per lane and source channel, not 32.
fn u4_channel_weights(c: u32, m0: u32, lane: u32) -> RowWeights4 {
    let q = (c * p.cy + min(m0 + lane % 8u, p.cy - 1u)) * 4u;
    return RowWeights4(u4_w[q], u4_w[q + 1u], u4_w[q + 2u], u4_w[q + 3u]);
}

fn u4_weights(r: RowWeights4, c: u32, m0: u32, j: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(subgroupShuffle(r.w0, j), subgroupShuffle(r.w1, j),
                               subgroupShuffle(r.w2, j), subgroupShuffle(r.w3, j));
}
