
// ---------------------------------------------------------------------------------------------
// Kernels for devices with subgroups of 8 or more lanes (lavapipe: one subgroup = one CPU SIMD
// register of 8 invocations). Appended to conv2d.wgsl as a module of its own, since naga rejects
// a module that uses subgroup operations on a device without the SUBGROUP feature.

// direct_reg_s1_r8 with the weights of a row of taps (kw <= 8) loaded once per subgroup: lane l
// loads tap l's two vec4s of packed weights and subgroupShuffle hands tap kx's to every lane, so a
// row of taps costs 2 vec4 weight loads per lane instead of 2 * kw (a shuffle costs about a
// twentieth of a load on llvmpipe). The weights are uniform across the workgroup (wid.z and
// loop counters only), so any lane's load serves all. Lanes past the last tile keep running on the
// last tile, without storing, so that their subgroup's shuffles stay defined.
@compute @workgroup_size(64)
fn direct_reg_s1_r8_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let total = p.n * p.hy * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    if (subgroupAll(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 8u;
    let ksize = p.cx * p.kh * p.kw;
    let hw4 = p.hx * p.wx / 4u;
    let rstep = p.dh * p.wx / 4u;
    let tap = min(sid % 8u, p.kw - 1u);
    var xc0 = (n * p.cx * p.hx * p.wx + oh * p.sh * p.wx + ow0) / 4u;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var d0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var d2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0); var d3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var d4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0); var d5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var d6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0); var d7 = vec4<f32>(0.0);
    // The two 4-channel blocks of packed weights of this 8-channel block, ksize apart.
    var k = wid.z * 2u * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            // This lane's tap of the row, for the whole subgroup.
            let wl = d1_w[k + tap];
            let ul = d1_w[k + tap + ksize];
            var xa = d1_x[row];
            var xb = d1_x[row + 1u];
            var xc = d1_x[row + 2u];
            var xd = d1_x[row + 3u];
            var e = d1_x[row + 4u];
            var i = row + 5u;
            var used = 0u;
            var kx = 0u;
            loop {
                let wv = subgroupShuffle(wl, kx);
                let wu = subgroupShuffle(ul, kx);
                a0 = fma(vec4<f32>(wv.x), xa, a0); b0 = fma(vec4<f32>(wv.x), xb, b0); c0 = fma(vec4<f32>(wv.x), xc, c0); d0 = fma(vec4<f32>(wv.x), xd, d0);
                a1 = fma(vec4<f32>(wv.y), xa, a1); b1 = fma(vec4<f32>(wv.y), xb, b1); c1 = fma(vec4<f32>(wv.y), xc, c1); d1 = fma(vec4<f32>(wv.y), xd, d1);
                a2 = fma(vec4<f32>(wv.z), xa, a2); b2 = fma(vec4<f32>(wv.z), xb, b2); c2 = fma(vec4<f32>(wv.z), xc, c2); d2 = fma(vec4<f32>(wv.z), xd, d2);
                a3 = fma(vec4<f32>(wv.w), xa, a3); b3 = fma(vec4<f32>(wv.w), xb, b3); c3 = fma(vec4<f32>(wv.w), xc, c3); d3 = fma(vec4<f32>(wv.w), xd, d3);
                a4 = fma(vec4<f32>(wu.x), xa, a4); b4 = fma(vec4<f32>(wu.x), xb, b4); c4 = fma(vec4<f32>(wu.x), xc, c4); d4 = fma(vec4<f32>(wu.x), xd, d4);
                a5 = fma(vec4<f32>(wu.y), xa, a5); b5 = fma(vec4<f32>(wu.y), xb, b5); c5 = fma(vec4<f32>(wu.y), xc, c5); d5 = fma(vec4<f32>(wu.y), xd, d5);
                a6 = fma(vec4<f32>(wu.z), xa, a6); b6 = fma(vec4<f32>(wu.z), xb, b6); c6 = fma(vec4<f32>(wu.z), xc, c6); d6 = fma(vec4<f32>(wu.z), xd, d6);
                a7 = fma(vec4<f32>(wu.w), xa, a7); b7 = fma(vec4<f32>(wu.w), xb, b7); c7 = fma(vec4<f32>(wu.w), xc, c7); d7 = fma(vec4<f32>(wu.w), xd, d7);
                kx = kx + 1u;
                if (kx >= p.kw) { break; }
                xa = vec4<f32>(xa.yzw, xb.x);
                xb = vec4<f32>(xb.yzw, xc.x);
                xc = vec4<f32>(xc.yzw, xd.x);
                xd = vec4<f32>(xd.yzw, e.x);
                e = e.yzwx;
                used = used + 1u;
                if (used == 4u) {
                    e = d1_x[i];
                    i = i + 1u;
                    used = 0u;
                }
            }
            k = k + p.kw;
            row = row + rstep;
        }
        xc0 = xc0 + hw4;
    }
    if (t_raw >= total) { return; }
    let ohw = p.hy * p.wy;
    let valid = min(16u, p.wy - ow0);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    d1_store(m0 + 0u, base + (m0 + 0u) * ohw, valid, a0, b0, c0, d0);
    d1_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1, c1, d1);
    d1_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2, c2, d2);
    d1_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3, c3, d3);
    d1_store(m0 + 4u, base + (m0 + 4u) * ohw, valid, a4, b4, c4, d4);
    d1_store(m0 + 5u, base + (m0 + 5u) * ohw, valid, a5, b5, c5, d5);
    d1_store(m0 + 6u, base + (m0 + 6u) * ohw, valid, a6, b6, c6, d6);
    d1_store(m0 + 7u, base + (m0 + 7u) * ohw, valid, a7, b7, c7, d7);
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
                     @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
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
    let lane = sid % 8u;
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
