
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

// direct_reg_s2_r8 with the weights of a row of taps (kw <= 8) loaded once per subgroup and
// handed round by subgroupShuffle, as direct_reg_s1_r8_sg: a row costs 2 vec4 weight loads per
// lane instead of 2 * kw. Lanes past the last tile run on the last one without storing.
@compute @workgroup_size(64)
fn direct_reg_s2_r8_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
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
    let phases = min(2u, p.kw);
    let tap = min(sid % 8u, p.kw - 1u);
    var xc0 = (n * p.cx * p.hx * p.wx + oh * p.sh * p.wx + 2u * ow0) / 4u;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var d0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var d2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0); var d3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var d4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0); var d5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var d6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0); var d7 = vec4<f32>(0.0);
    var krow = wid.z * 2u * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            // This lane's tap of the row, for the whole subgroup.
            let wl = d2_w[krow + tap];
            let ul = d2_w[krow + ksize + tap];
            let v0 = d2_x[row];
            let v1 = d2_x[row + 1u];
            let v2 = d2_x[row + 2u];
            let v3 = d2_x[row + 3u];
            let v4 = d2_x[row + 4u];
            let v5 = d2_x[row + 5u];
            let v6 = d2_x[row + 6u];
            let v7 = d2_x[row + 7u];
            for (var q = 0u; q < phases; q = q + 1u) {
                let even = q == 0u;
                var xa = select(vec4<f32>(v0.yw, v1.yw), vec4<f32>(v0.xz, v1.xz), even);
                var xb = select(vec4<f32>(v2.yw, v3.yw), vec4<f32>(v2.xz, v3.xz), even);
                var xc = select(vec4<f32>(v4.yw, v5.yw), vec4<f32>(v4.xz, v5.xz), even);
                var xd = select(vec4<f32>(v6.yw, v7.yw), vec4<f32>(v6.xz, v7.xz), even);
                // e.x is the position the next slide takes: 32 + q, then 34 + q.
                var i = row + 8u;
                var e = d2_x[i];
                e = select(e.yzwx, e, even);
                var used = 0u;
                var kx = q;
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
                    kx = kx + 2u;
                    if (kx >= p.kw) { break; }
                    xa = vec4<f32>(xa.yzw, xb.x);
                    xb = vec4<f32>(xb.yzw, xc.x);
                    xc = vec4<f32>(xc.yzw, xd.x);
                    xd = vec4<f32>(xd.yzw, e.x);
                    e = e.zwxy;
                    used = used + 1u;
                    if (used == 2u) {
                        i = i + 1u;
                        e = d2_x[i];
                        e = select(e.yzwx, e, even);
                        used = 0u;
                    }
                }
            }
            row = row + rstep;
            krow = krow + p.kw;
        }
        xc0 = xc0 + hw4;
    }
    if (t_raw >= total) { return; }
    let ohw = p.hy * p.wy;
    let valid = min(16u, p.wy - ow0);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    d2_store(m0 + 0u, base + (m0 + 0u) * ohw, valid, a0, b0, c0, d0);
    d2_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1, c1, d1);
    d2_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2, c2, d2);
    d2_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3, c3, d3);
    d2_store(m0 + 4u, base + (m0 + 4u) * ohw, valid, a4, b4, c4, d4);
    d2_store(m0 + 5u, base + (m0 + 5u) * ohw, valid, a5, b5, c5, d5);
    d2_store(m0 + 6u, base + (m0 + 6u) * ohw, valid, a6, b6, c6, d6);
    d2_store(m0 + 7u, base + (m0 + 7u) * ohw, valid, a7, b7, c7, d7);
}

// The all-taps weight-gradient kernels wgrad_reg_s1_k3 and wgrad_reg_s2_k4 with gy shared
// across the subgroup: lanes are consecutive input channels, so where a subgroup's lanes all
// belong to one (split, output block) they read the same gy; lane l then loads the blocks q + l
// of a run of 8 and subgroupShuffle hands block q to every lane, 1/8 of the gy loads. Subgroups
// that straddle two pairs load their own, as the plain kernels do. Lanes past the last pair run
// on it without storing. (wgrad_reg_s1_k5 keeps its own loads: with gy shared it measured slower,
// the CIFAR LeNet's 5x5 layers 177 -> 196 ms on llvmpipe, 2 cores; 3x3 gained 10%, 4x4 s2 6%.)
@compute @workgroup_size(64)
fn wgrad_reg_s1_k3_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
    let pairs = p.cx * ((p.cy + 3u) / 4u);
    let total = pairs * p.splits;
    let t_raw = flat(wid, nwg, lid);
    if (subgroupAll(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    // t / cx names (split, output block): the gy rows. Shared by the whole subgroup when its
    // lanes are consecutive input channels of one pair (cx a multiple of 8 on lavapipe).
    let gkey = t / p.cx;
    let one_pair = subgroupAll(gkey == subgroupBroadcastFirst(gkey));
    let lane = sid % 8u;
    let split = t / pairs;
    let c = t % p.cx;
    let m0 = ((t % pairs) / p.cx) * 4u;
    let q_end = p.wy / 4u;
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0); var a02 = vec4<f32>(0.0); var a03 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var a12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0); var a22 = vec4<f32>(0.0); var a23 = vec4<f32>(0.0);
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        let x0row = w4_x_row(r, c, 0u, 0u);
        let x1row = w4_x_row(r, c, 1u, 0u);
        let x2row = w4_x_row(r, c, 2u, 0u);
        var x0a = w4_x[x0row];
        var x1a = w4_x[x1row];
        var x2a = w4_x[x2row];
        for (var q = 0u; q < q_end; q = q + 1u) {
            var v0: vec4<f32>;
            var v1: vec4<f32>;
            var v2: vec4<f32>;
            var v3: vec4<f32>;
            if (one_pair) {
                // Lane l holds gy at q + l of the current run of 8 blocks.
                let j = q % 8u;
                if (j == 0u) {
                    let qq = min(q + lane, q_end - 1u);
                    s0 = w4_gy[g0 + qq];
                    s1 = w4_gy[g1 + qq];
                    s2 = w4_gy[g2 + qq];
                    s3 = w4_gy[g3 + qq];
                }
                v0 = subgroupShuffle(s0, j);
                v1 = subgroupShuffle(s1, j);
                v2 = subgroupShuffle(s2, j);
                v3 = subgroupShuffle(s3, j);
            } else {
                v0 = w4_gy[g0 + q];
                v1 = w4_gy[g1 + q];
                v2 = w4_gy[g2 + q];
                v3 = w4_gy[g3 + q];
            }
            let x0b = w4_x[x0row + q + 1u];
            let x01 = vec4<f32>(x0a.yzw, x0b.x); let x02 = vec4<f32>(x0a.zw, x0b.xy); let x03 = vec4<f32>(x0a.w, x0b.xyz);
            a00 = fma(vec4<f32>(v0.x), x0a, a00); a00 = fma(vec4<f32>(v0.y), x01, a00); a00 = fma(vec4<f32>(v0.z), x02, a00); a00 = fma(vec4<f32>(v0.w), x03, a00);
            a01 = fma(vec4<f32>(v1.x), x0a, a01); a01 = fma(vec4<f32>(v1.y), x01, a01); a01 = fma(vec4<f32>(v1.z), x02, a01); a01 = fma(vec4<f32>(v1.w), x03, a01);
            a02 = fma(vec4<f32>(v2.x), x0a, a02); a02 = fma(vec4<f32>(v2.y), x01, a02); a02 = fma(vec4<f32>(v2.z), x02, a02); a02 = fma(vec4<f32>(v2.w), x03, a02);
            a03 = fma(vec4<f32>(v3.x), x0a, a03); a03 = fma(vec4<f32>(v3.y), x01, a03); a03 = fma(vec4<f32>(v3.z), x02, a03); a03 = fma(vec4<f32>(v3.w), x03, a03);
            x0a = x0b;
            let x1b = w4_x[x1row + q + 1u];
            let x11 = vec4<f32>(x1a.yzw, x1b.x); let x12 = vec4<f32>(x1a.zw, x1b.xy); let x13 = vec4<f32>(x1a.w, x1b.xyz);
            a10 = fma(vec4<f32>(v0.x), x1a, a10); a10 = fma(vec4<f32>(v0.y), x11, a10); a10 = fma(vec4<f32>(v0.z), x12, a10); a10 = fma(vec4<f32>(v0.w), x13, a10);
            a11 = fma(vec4<f32>(v1.x), x1a, a11); a11 = fma(vec4<f32>(v1.y), x11, a11); a11 = fma(vec4<f32>(v1.z), x12, a11); a11 = fma(vec4<f32>(v1.w), x13, a11);
            a12 = fma(vec4<f32>(v2.x), x1a, a12); a12 = fma(vec4<f32>(v2.y), x11, a12); a12 = fma(vec4<f32>(v2.z), x12, a12); a12 = fma(vec4<f32>(v2.w), x13, a12);
            a13 = fma(vec4<f32>(v3.x), x1a, a13); a13 = fma(vec4<f32>(v3.y), x11, a13); a13 = fma(vec4<f32>(v3.z), x12, a13); a13 = fma(vec4<f32>(v3.w), x13, a13);
            x1a = x1b;
            let x2b = w4_x[x2row + q + 1u];
            let x21 = vec4<f32>(x2a.yzw, x2b.x); let x22 = vec4<f32>(x2a.zw, x2b.xy); let x23 = vec4<f32>(x2a.w, x2b.xyz);
            a20 = fma(vec4<f32>(v0.x), x2a, a20); a20 = fma(vec4<f32>(v0.y), x21, a20); a20 = fma(vec4<f32>(v0.z), x22, a20); a20 = fma(vec4<f32>(v0.w), x23, a20);
            a21 = fma(vec4<f32>(v1.x), x2a, a21); a21 = fma(vec4<f32>(v1.y), x21, a21); a21 = fma(vec4<f32>(v1.z), x22, a21); a21 = fma(vec4<f32>(v1.w), x23, a21);
            a22 = fma(vec4<f32>(v2.x), x2a, a22); a22 = fma(vec4<f32>(v2.y), x21, a22); a22 = fma(vec4<f32>(v2.z), x22, a22); a22 = fma(vec4<f32>(v2.w), x23, a22);
            a23 = fma(vec4<f32>(v3.x), x2a, a23); a23 = fma(vec4<f32>(v3.y), x21, a23); a23 = fma(vec4<f32>(v3.z), x22, a23); a23 = fma(vec4<f32>(v3.w), x23, a23);
            x2a = x2b;
        }
        row_next(&r);
    }
    if (t_raw >= total) { return; }
    let k0 = (c * 3u + 0u) * 3u;
    w4_store(split, m0, k0, k0 + 3u, a00); w4_store(split, m0 + 1u, k0, k0 + 3u, a01); w4_store(split, m0 + 2u, k0, k0 + 3u, a02); w4_store(split, m0 + 3u, k0, k0 + 3u, a03);
    let k1 = (c * 3u + 1u) * 3u;
    w4_store(split, m0, k1, k1 + 3u, a10); w4_store(split, m0 + 1u, k1, k1 + 3u, a11); w4_store(split, m0 + 2u, k1, k1 + 3u, a12); w4_store(split, m0 + 3u, k1, k1 + 3u, a13);
    let k2 = (c * 3u + 2u) * 3u;
    w4_store(split, m0, k2, k2 + 3u, a20); w4_store(split, m0 + 1u, k2, k2 + 3u, a21); w4_store(split, m0 + 2u, k2, k2 + 3u, a22); w4_store(split, m0 + 3u, k2, k2 + 3u, a23);
}

@compute @workgroup_size(64)
fn wgrad_reg_s2_k4_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
    let pairs = p.cx * ((p.cy + 7u) / 8u);
    let total = pairs * p.splits;
    let t_raw = flat(wid, nwg, lid);
    if (subgroupAll(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    // t / cx names (split, output block): the gy rows. Shared by the whole subgroup when its
    // lanes are consecutive input channels of one pair (cx a multiple of 8 on lavapipe).
    let gkey = t / p.cx;
    let one_pair = subgroupAll(gkey == subgroupBroadcastFirst(gkey));
    let lane = sid % 8u;
    let split = t / pairs;
    let c = t % p.cx;
    let m0 = ((t % pairs) / p.cx) * 8u;
    let q_end = p.wy / 4u;
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0); var a02 = vec4<f32>(0.0); var a03 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var a12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0); var a22 = vec4<f32>(0.0); var a23 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0); var a31 = vec4<f32>(0.0); var a32 = vec4<f32>(0.0); var a33 = vec4<f32>(0.0);
    var a40 = vec4<f32>(0.0); var a41 = vec4<f32>(0.0); var a42 = vec4<f32>(0.0); var a43 = vec4<f32>(0.0);
    var a50 = vec4<f32>(0.0); var a51 = vec4<f32>(0.0); var a52 = vec4<f32>(0.0); var a53 = vec4<f32>(0.0);
    var a60 = vec4<f32>(0.0); var a61 = vec4<f32>(0.0); var a62 = vec4<f32>(0.0); var a63 = vec4<f32>(0.0);
    var a70 = vec4<f32>(0.0); var a71 = vec4<f32>(0.0); var a72 = vec4<f32>(0.0); var a73 = vec4<f32>(0.0);
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0);
    var s5 = vec4<f32>(0.0);
    var s6 = vec4<f32>(0.0);
    var s7 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        let g4 = w4_gy_row(m0 + 4u, r);
        let g5 = w4_gy_row(m0 + 5u, r);
        let g6 = w4_gy_row(m0 + 6u, r);
        let g7 = w4_gy_row(m0 + 7u, r);
        let x0row = w4_x_row(r, c, 0u, 0u);
        let x1row = w4_x_row(r, c, 1u, 0u);
        let x2row = w4_x_row(r, c, 2u, 0u);
        let x3row = w4_x_row(r, c, 3u, 0u);
        var x0p = w4_x[x0row];
        var x1p = w4_x[x1row];
        var x2p = w4_x[x2row];
        var x3p = w4_x[x3row];
        for (var q = 0u; q < q_end; q = q + 1u) {
            var v0: vec4<f32>;
            var v1: vec4<f32>;
            var v2: vec4<f32>;
            var v3: vec4<f32>;
            var v4: vec4<f32>;
            var v5: vec4<f32>;
            var v6: vec4<f32>;
            var v7: vec4<f32>;
            if (one_pair) {
                // Lane l holds gy at q + l of the current run of 8 blocks.
                let j = q % 8u;
                if (j == 0u) {
                    let qq = min(q + lane, q_end - 1u);
                    s0 = w4_gy[g0 + qq];
                    s1 = w4_gy[g1 + qq];
                    s2 = w4_gy[g2 + qq];
                    s3 = w4_gy[g3 + qq];
                    s4 = w4_gy[g4 + qq];
                    s5 = w4_gy[g5 + qq];
                    s6 = w4_gy[g6 + qq];
                    s7 = w4_gy[g7 + qq];
                }
                v0 = subgroupShuffle(s0, j);
                v1 = subgroupShuffle(s1, j);
                v2 = subgroupShuffle(s2, j);
                v3 = subgroupShuffle(s3, j);
                v4 = subgroupShuffle(s4, j);
                v5 = subgroupShuffle(s5, j);
                v6 = subgroupShuffle(s6, j);
                v7 = subgroupShuffle(s7, j);
            } else {
                v0 = w4_gy[g0 + q];
                v1 = w4_gy[g1 + q];
                v2 = w4_gy[g2 + q];
                v3 = w4_gy[g3 + q];
                v4 = w4_gy[g4 + q];
                v5 = w4_gy[g5 + q];
                v6 = w4_gy[g6 + q];
                v7 = w4_gy[g7 + q];
            }
            let x0a = w4_x[x0row + 2u * q + 1u];
            let x0b = w4_x[x0row + 2u * q + 2u];
            let x0s1 = vec4<f32>(x0p.zw, x0a.xy); let x0s3 = vec4<f32>(x0a.zw, x0b.xy);
            a00 = fma(vec4<f32>(v0.x), x0p, a00); a00 = fma(vec4<f32>(v0.y), x0s1, a00); a00 = fma(vec4<f32>(v0.z), x0a, a00); a00 = fma(vec4<f32>(v0.w), x0s3, a00);
            a10 = fma(vec4<f32>(v1.x), x0p, a10); a10 = fma(vec4<f32>(v1.y), x0s1, a10); a10 = fma(vec4<f32>(v1.z), x0a, a10); a10 = fma(vec4<f32>(v1.w), x0s3, a10);
            a20 = fma(vec4<f32>(v2.x), x0p, a20); a20 = fma(vec4<f32>(v2.y), x0s1, a20); a20 = fma(vec4<f32>(v2.z), x0a, a20); a20 = fma(vec4<f32>(v2.w), x0s3, a20);
            a30 = fma(vec4<f32>(v3.x), x0p, a30); a30 = fma(vec4<f32>(v3.y), x0s1, a30); a30 = fma(vec4<f32>(v3.z), x0a, a30); a30 = fma(vec4<f32>(v3.w), x0s3, a30);
            a40 = fma(vec4<f32>(v4.x), x0p, a40); a40 = fma(vec4<f32>(v4.y), x0s1, a40); a40 = fma(vec4<f32>(v4.z), x0a, a40); a40 = fma(vec4<f32>(v4.w), x0s3, a40);
            a50 = fma(vec4<f32>(v5.x), x0p, a50); a50 = fma(vec4<f32>(v5.y), x0s1, a50); a50 = fma(vec4<f32>(v5.z), x0a, a50); a50 = fma(vec4<f32>(v5.w), x0s3, a50);
            a60 = fma(vec4<f32>(v6.x), x0p, a60); a60 = fma(vec4<f32>(v6.y), x0s1, a60); a60 = fma(vec4<f32>(v6.z), x0a, a60); a60 = fma(vec4<f32>(v6.w), x0s3, a60);
            a70 = fma(vec4<f32>(v7.x), x0p, a70); a70 = fma(vec4<f32>(v7.y), x0s1, a70); a70 = fma(vec4<f32>(v7.z), x0a, a70); a70 = fma(vec4<f32>(v7.w), x0s3, a70);
            x0p = x0b;
            let x1a = w4_x[x1row + 2u * q + 1u];
            let x1b = w4_x[x1row + 2u * q + 2u];
            let x1s1 = vec4<f32>(x1p.zw, x1a.xy); let x1s3 = vec4<f32>(x1a.zw, x1b.xy);
            a01 = fma(vec4<f32>(v0.x), x1p, a01); a01 = fma(vec4<f32>(v0.y), x1s1, a01); a01 = fma(vec4<f32>(v0.z), x1a, a01); a01 = fma(vec4<f32>(v0.w), x1s3, a01);
            a11 = fma(vec4<f32>(v1.x), x1p, a11); a11 = fma(vec4<f32>(v1.y), x1s1, a11); a11 = fma(vec4<f32>(v1.z), x1a, a11); a11 = fma(vec4<f32>(v1.w), x1s3, a11);
            a21 = fma(vec4<f32>(v2.x), x1p, a21); a21 = fma(vec4<f32>(v2.y), x1s1, a21); a21 = fma(vec4<f32>(v2.z), x1a, a21); a21 = fma(vec4<f32>(v2.w), x1s3, a21);
            a31 = fma(vec4<f32>(v3.x), x1p, a31); a31 = fma(vec4<f32>(v3.y), x1s1, a31); a31 = fma(vec4<f32>(v3.z), x1a, a31); a31 = fma(vec4<f32>(v3.w), x1s3, a31);
            a41 = fma(vec4<f32>(v4.x), x1p, a41); a41 = fma(vec4<f32>(v4.y), x1s1, a41); a41 = fma(vec4<f32>(v4.z), x1a, a41); a41 = fma(vec4<f32>(v4.w), x1s3, a41);
            a51 = fma(vec4<f32>(v5.x), x1p, a51); a51 = fma(vec4<f32>(v5.y), x1s1, a51); a51 = fma(vec4<f32>(v5.z), x1a, a51); a51 = fma(vec4<f32>(v5.w), x1s3, a51);
            a61 = fma(vec4<f32>(v6.x), x1p, a61); a61 = fma(vec4<f32>(v6.y), x1s1, a61); a61 = fma(vec4<f32>(v6.z), x1a, a61); a61 = fma(vec4<f32>(v6.w), x1s3, a61);
            a71 = fma(vec4<f32>(v7.x), x1p, a71); a71 = fma(vec4<f32>(v7.y), x1s1, a71); a71 = fma(vec4<f32>(v7.z), x1a, a71); a71 = fma(vec4<f32>(v7.w), x1s3, a71);
            x1p = x1b;
            let x2a = w4_x[x2row + 2u * q + 1u];
            let x2b = w4_x[x2row + 2u * q + 2u];
            let x2s1 = vec4<f32>(x2p.zw, x2a.xy); let x2s3 = vec4<f32>(x2a.zw, x2b.xy);
            a02 = fma(vec4<f32>(v0.x), x2p, a02); a02 = fma(vec4<f32>(v0.y), x2s1, a02); a02 = fma(vec4<f32>(v0.z), x2a, a02); a02 = fma(vec4<f32>(v0.w), x2s3, a02);
            a12 = fma(vec4<f32>(v1.x), x2p, a12); a12 = fma(vec4<f32>(v1.y), x2s1, a12); a12 = fma(vec4<f32>(v1.z), x2a, a12); a12 = fma(vec4<f32>(v1.w), x2s3, a12);
            a22 = fma(vec4<f32>(v2.x), x2p, a22); a22 = fma(vec4<f32>(v2.y), x2s1, a22); a22 = fma(vec4<f32>(v2.z), x2a, a22); a22 = fma(vec4<f32>(v2.w), x2s3, a22);
            a32 = fma(vec4<f32>(v3.x), x2p, a32); a32 = fma(vec4<f32>(v3.y), x2s1, a32); a32 = fma(vec4<f32>(v3.z), x2a, a32); a32 = fma(vec4<f32>(v3.w), x2s3, a32);
            a42 = fma(vec4<f32>(v4.x), x2p, a42); a42 = fma(vec4<f32>(v4.y), x2s1, a42); a42 = fma(vec4<f32>(v4.z), x2a, a42); a42 = fma(vec4<f32>(v4.w), x2s3, a42);
            a52 = fma(vec4<f32>(v5.x), x2p, a52); a52 = fma(vec4<f32>(v5.y), x2s1, a52); a52 = fma(vec4<f32>(v5.z), x2a, a52); a52 = fma(vec4<f32>(v5.w), x2s3, a52);
            a62 = fma(vec4<f32>(v6.x), x2p, a62); a62 = fma(vec4<f32>(v6.y), x2s1, a62); a62 = fma(vec4<f32>(v6.z), x2a, a62); a62 = fma(vec4<f32>(v6.w), x2s3, a62);
            a72 = fma(vec4<f32>(v7.x), x2p, a72); a72 = fma(vec4<f32>(v7.y), x2s1, a72); a72 = fma(vec4<f32>(v7.z), x2a, a72); a72 = fma(vec4<f32>(v7.w), x2s3, a72);
            x2p = x2b;
            let x3a = w4_x[x3row + 2u * q + 1u];
            let x3b = w4_x[x3row + 2u * q + 2u];
            let x3s1 = vec4<f32>(x3p.zw, x3a.xy); let x3s3 = vec4<f32>(x3a.zw, x3b.xy);
            a03 = fma(vec4<f32>(v0.x), x3p, a03); a03 = fma(vec4<f32>(v0.y), x3s1, a03); a03 = fma(vec4<f32>(v0.z), x3a, a03); a03 = fma(vec4<f32>(v0.w), x3s3, a03);
            a13 = fma(vec4<f32>(v1.x), x3p, a13); a13 = fma(vec4<f32>(v1.y), x3s1, a13); a13 = fma(vec4<f32>(v1.z), x3a, a13); a13 = fma(vec4<f32>(v1.w), x3s3, a13);
            a23 = fma(vec4<f32>(v2.x), x3p, a23); a23 = fma(vec4<f32>(v2.y), x3s1, a23); a23 = fma(vec4<f32>(v2.z), x3a, a23); a23 = fma(vec4<f32>(v2.w), x3s3, a23);
            a33 = fma(vec4<f32>(v3.x), x3p, a33); a33 = fma(vec4<f32>(v3.y), x3s1, a33); a33 = fma(vec4<f32>(v3.z), x3a, a33); a33 = fma(vec4<f32>(v3.w), x3s3, a33);
            a43 = fma(vec4<f32>(v4.x), x3p, a43); a43 = fma(vec4<f32>(v4.y), x3s1, a43); a43 = fma(vec4<f32>(v4.z), x3a, a43); a43 = fma(vec4<f32>(v4.w), x3s3, a43);
            a53 = fma(vec4<f32>(v5.x), x3p, a53); a53 = fma(vec4<f32>(v5.y), x3s1, a53); a53 = fma(vec4<f32>(v5.z), x3a, a53); a53 = fma(vec4<f32>(v5.w), x3s3, a53);
            a63 = fma(vec4<f32>(v6.x), x3p, a63); a63 = fma(vec4<f32>(v6.y), x3s1, a63); a63 = fma(vec4<f32>(v6.z), x3a, a63); a63 = fma(vec4<f32>(v6.w), x3s3, a63);
            a73 = fma(vec4<f32>(v7.x), x3p, a73); a73 = fma(vec4<f32>(v7.y), x3s1, a73); a73 = fma(vec4<f32>(v7.z), x3a, a73); a73 = fma(vec4<f32>(v7.w), x3s3, a73);
            x3p = x3b;
        }
        row_next(&r);
    }
    if (t_raw >= total) { return; }
    let k0 = (c * 4u + 0u) * 4u;
    let k1 = (c * 4u + 1u) * 4u;
    let k2 = (c * 4u + 2u) * 4u;
    let k3 = (c * 4u + 3u) * 4u;
    w4_store(split, m0, k0, k0 + 4u, a00); w4_store(split, m0, k1, k1 + 4u, a01); w4_store(split, m0, k2, k2 + 4u, a02); w4_store(split, m0, k3, k3 + 4u, a03);
    w4_store(split, m0 + 1u, k0, k0 + 4u, a10); w4_store(split, m0 + 1u, k1, k1 + 4u, a11); w4_store(split, m0 + 1u, k2, k2 + 4u, a12); w4_store(split, m0 + 1u, k3, k3 + 4u, a13);
    w4_store(split, m0 + 2u, k0, k0 + 4u, a20); w4_store(split, m0 + 2u, k1, k1 + 4u, a21); w4_store(split, m0 + 2u, k2, k2 + 4u, a22); w4_store(split, m0 + 2u, k3, k3 + 4u, a23);
    w4_store(split, m0 + 3u, k0, k0 + 4u, a30); w4_store(split, m0 + 3u, k1, k1 + 4u, a31); w4_store(split, m0 + 3u, k2, k2 + 4u, a32); w4_store(split, m0 + 3u, k3, k3 + 4u, a33);
    w4_store(split, m0 + 4u, k0, k0 + 4u, a40); w4_store(split, m0 + 4u, k1, k1 + 4u, a41); w4_store(split, m0 + 4u, k2, k2 + 4u, a42); w4_store(split, m0 + 4u, k3, k3 + 4u, a43);
    w4_store(split, m0 + 5u, k0, k0 + 4u, a50); w4_store(split, m0 + 5u, k1, k1 + 4u, a51); w4_store(split, m0 + 5u, k2, k2 + 4u, a52); w4_store(split, m0 + 5u, k3, k3 + 4u, a53);
    w4_store(split, m0 + 6u, k0, k0 + 4u, a60); w4_store(split, m0 + 6u, k1, k1 + 4u, a61); w4_store(split, m0 + 6u, k2, k2 + 4u, a62); w4_store(split, m0 + 6u, k3, k3 + 4u, a63);
    w4_store(split, m0 + 7u, k0, k0 + 4u, a70); w4_store(split, m0 + 7u, k1, k1 + 4u, a71); w4_store(split, m0 + 7u, k2, k2 + 4u, a72); w4_store(split, m0 + 7u, k3, k3 + 4u, a73);
}

