
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

fn d2_row_weights(k: u32, lane: u32) -> RowWeights {
    let tap = k + min(lane % 8u, p.kw - 1u);
    return RowWeights(d2_w[tap], d2_w[tap + p.cx * p.kh * p.kw]);
}

fn d2_tap_weights(r: RowWeights, k: u32, kx: u32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(subgroupShuffle(r.lo, kx), subgroupShuffle(r.hi, kx));
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

// transposed_reg with 8 output channels per invocation (wid.z = phase * blocks of 8 + block) and
// the weights loaded once per subgroup: for each run of 8 source channels, lane l loads channel
// cb + l's 8 weights of the tap and subgroupShuffle hands channel c's to every lane. Per source
// channel a lane then loads the 8 x values and no weights for 64 multiply-adds, where
// transposed_reg loads 8 x values and 4 weights for 32. The weights depend on wid.z and loop
// counters only, so any lane's load serves all; lanes without an output of their own (past the
// last tile, or a phase row or column past the edge) keep running without storing, so that their
// subgroup's shuffles stay defined (their clamped reads stay inside the bindings).
fn tr_w8(c: u32, m0: u32, k: u32) -> array<vec4<f32>, 2> {
    let kk = p.kh * p.kw;
    let base = min(c, p.cx - 1u) * p.cy * kk + k;
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        lo[j] = tr_w[base + min(m0 + j, p.cy - 1u) * kk];
        hi[j] = tr_w[base + min(m0 + 4u + j, p.cy - 1u) * kk];
    }
    return array<vec4<f32>, 2>(lo, hi);
}

@compute @workgroup_size(64)
fn transposed_reg_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let mblocks = (p.cy + 7u) / 8u;
    let phase = wid.z / mblocks;
    let m0 = (wid.z % mblocks) * 8u;
    let phh = phase / p.sw;
    let phw = phase % p.sw;
    let rows = (p.hy + p.sh - 1u) / p.sh;
    let cols = (p.wy + p.sw - 1u) / p.sw;
    let tiles_w = (cols + 7u) / 8u;
    let total = p.n * rows * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let t = min(t_raw, total - 1u);
    let c0 = (t % tiles_w) * 8u;
    let r = (t / tiles_w) % rows;
    let n = t / (tiles_w * rows);
    let oh = phh + r * p.sh;
    let ow0 = phw + c0 * p.sw;
    let live = t_raw < total && oh < p.hy && ow0 < p.wy;
    if (subgroupAll(!live)) { return; }
    let kk = p.kh * p.kw;
    let hw = p.hx * p.wx;
    let lane = load_lane() % 8u;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0);
    let bigh = ((p.kh - 1u) * p.dh) / p.sh + 1u;
    let bigw = ((p.kw - 1u) * p.dw) / p.sw + 1u;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let th = phh + p.ph + bigh * p.sh - ky * p.dh;
        if (th % p.sh != 0u) { continue; }
        let ih = u32(i32(r + th / p.sh + p.pad_top) - i32(bigh));
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let tw = phw + p.pw + bigw * p.sw - kx * p.dw;
            if (tw % p.sw != 0u) { continue; }
            let iw = u32(i32(c0 + tw / p.sw + p.pad_left) - i32(bigw));
            var i = n * p.cx * hw + ih * p.wx + iw;
            let k = ky * p.kw + kx;
            for (var cb = 0u; cb < p.cx; cb = cb + 8u) {
                let wl = tr_w8(cb + lane, m0, k);
                let cend = min(8u, p.cx - cb);
                for (var j = 0u; j < cend; j = j + 1u) {
                    let xa = vec4<f32>(tr_x[i], tr_x[i + 1u], tr_x[i + 2u], tr_x[i + 3u]);
                    let xb = vec4<f32>(tr_x[i + 4u], tr_x[i + 5u], tr_x[i + 6u], tr_x[i + 7u]);
                    let v = subgroupShuffle(wl[0], j);
                    let u = subgroupShuffle(wl[1], j);
                    a0 = fma(vec4<f32>(v.x), xa, a0); b0 = fma(vec4<f32>(v.x), xb, b0);
                    a1 = fma(vec4<f32>(v.y), xa, a1); b1 = fma(vec4<f32>(v.y), xb, b1);
                    a2 = fma(vec4<f32>(v.z), xa, a2); b2 = fma(vec4<f32>(v.z), xb, b2);
                    a3 = fma(vec4<f32>(v.w), xa, a3); b3 = fma(vec4<f32>(v.w), xb, b3);
                    a4 = fma(vec4<f32>(u.x), xa, a4); b4 = fma(vec4<f32>(u.x), xb, b4);
                    a5 = fma(vec4<f32>(u.y), xa, a5); b5 = fma(vec4<f32>(u.y), xb, b5);
                    a6 = fma(vec4<f32>(u.z), xa, a6); b6 = fma(vec4<f32>(u.z), xb, b6);
                    a7 = fma(vec4<f32>(u.w), xa, a7); b7 = fma(vec4<f32>(u.w), xb, b7);
                    i = i + hw;
                }
            }
        }
    }
    if (!live) { return; }
    let ohw = p.hy * p.wy;
    let valid = min(8u, (p.wy - ow0 + p.sw - 1u) / p.sw);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    tr_store(m0, base + m0 * ohw, valid, a0, b0);
    tr_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1);
    tr_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2);
    tr_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3);
    tr_store(m0 + 4u, base + (m0 + 4u) * ohw, valid, a4, b4);
    tr_store(m0 + 5u, base + (m0 + 5u) * ohw, valid, a5, b5);
    tr_store(m0 + 6u, base + (m0 + 6u) * ohw, valid, a6, b6);
    tr_store(m0 + 7u, base + (m0 + 7u) * ohw, valid, a7, b7);
}
