// Matrix multiply C[b] = op(A[b]) @ op(B[b]) for software drivers with subgroups of 8 or more
// lanes (lavapipe: one subgroup = one CPU SIMD register of 8 invocations). Same product, params
// and clamping rules as `reg_vec4`; appended to matmul.wgsl (its Params and `p`) as a module of
// its own, because naga rejects a module that uses subgroup operations on a device without the
// SUBGROUP feature.
// CPU reference: kernels/src/matmul.rs (`cpu`).
//
// Why subgroups: lavapipe issues a storage load lane by lane, so loads, not multiply-adds, set the
// pace (a vec4 load costs about 20 vec4 broadcasts, measured on llvmpipe, 2 cores). Every lane of
// a workgroup here shares the same 16 rows of A, so each lane loads 1/8 of A's 16 x 4 block of a
// k-step and subgroupBroadcast hands the rest over: per k-step a lane loads 2 vec4s of A and 8 of
// B for 512 multiply-adds, where reg_vec4 loads 16 vec4s for 256.
//
// Workgroup: 64 lanes, each 16 rows x 8 consecutive columns of C; wid.x = block of 512 columns,
// wid.y = block of 16 rows, wid.z = batch. Lanes past the last column keep running (their loads
// are clamped) so that their subgroup's broadcasts stay defined; whole subgroups past the end
// leave at once.

// reg_vec4's bindings (v_a, v_b, v_c) and helpers (line_offsets, vb_rows, vb_cols, store_block)
// serve here too.

// C as vec4s, for the `_c4` entry points (C's rows a multiple of 4 long): same binding as v_c.
@group(0) @binding(3) var<storage, read_write> v_c4: array<vec4<f32>>;

// Writes C[i0..i0+4, j0..j0+8] from the two accumulators as vec4s (j0 < n, a multiple of 4).
fn store_block4(cbase: u32, i0: u32, j0: u32, lo: mat4x4<f32>, hi: mat4x4<f32>) {
    for (var r = 0u; r < 4u; r = r + 1u) {
        let i = i0 + r;
        if (i >= p.m) { return; }
        let q = (cbase + i * p.n + j0) / 4u;
        v_c4[q] = lo[r];
        if (j0 + 4u < p.n) { v_c4[q + 1u] = hi[r]; }
    }
}

// A 4 x 4 block of A whose column r is A[i0 + r, k..k+4], from the lanes' loads: A stored [M, K]
// (lane l holds row l's vec4 along k), rows `first`..`first`+4 of the lanes.
fn rows_from(v: vec4<f32>, first: u32) -> mat4x4<f32> {
    if (first == 0u) {
        return mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u),
                           subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
    }
    return mat4x4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u),
                       subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}

// A stored [K, M]: lane l holds row k + l % 4 of the storage at the 4 columns of quad `first`/4 + l / 4;
// column r of the result is A[i + r, k..k+4] for that quad's rows i.
fn cols_from(v: vec4<f32>, first: u32) -> mat4x4<f32> {
    if (first == 0u) {
        return transpose(mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u),
                                     subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)));
    }
    return transpose(mat4x4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u),
                                 subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u)));
}

struct Block16 { c00: mat4x4<f32>, c01: mat4x4<f32>, c10: mat4x4<f32>, c11: mat4x4<f32>, c20: mat4x4<f32>, c21: mat4x4<f32>, c30: mat4x4<f32>, c31: mat4x4<f32> }

// The K loop of reg_subgroup: this lane's 16 x 8 block of C for rows i0.., columns j0...
fn reg_subgroup_block(wid: vec3<u32>, lid: u32, sid: u32, j0: u32) -> Block16 {
    let i0 = wid.y * 16u;
    let b = wid.z;
    let abase = b * p.a_batch;
    let bbase = b * p.b_batch;
    let steps = p.k / 4u;
    let sn = p.n / 4u;
    let l = sid % 8u;
    // This lane's share of A, in vec4 units: two rows (stored [M, K]) or two column quads of one
    // storage row (stored [K, M]), clamped inside the matrix.
    var a_lo: u32; var a_hi: u32; var a_step: u32;
    if (p.trans_a == 0u) {
        let s = p.k / 4u;
        a_lo = abase / 4u + min(i0 + l, p.m - 1u) * s;
        a_hi = abase / 4u + min(i0 + 8u + l, p.m - 1u) * s;
        a_step = 1u;
    } else {
        let sm = p.m / 4u;
        let quad = i0 / 4u + l / 4u;
        a_lo = abase / 4u + (l % 4u) * sm + min(quad, sm - 1u);
        a_hi = abase / 4u + (l % 4u) * sm + min(quad + 2u, sm - 1u);
        a_step = 4u * sm;
    }
    let bq0 = bbase / 4u + min(j0, p.n - 1u) / 4u;
    let bq1 = bbase / 4u + min(j0 + 4u, p.n - 1u) / 4u;
    let bo0 = line_offsets(bbase, j0, p.n, p.k);
    let bo1 = line_offsets(bbase, j0 + 4u, p.n, p.k);
    var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>(); var c11 = mat4x4<f32>();
    var c20 = mat4x4<f32>(); var c21 = mat4x4<f32>();
    var c30 = mat4x4<f32>(); var c31 = mat4x4<f32>();
    for (var kq = 0u; kq < steps; kq = kq + 1u) {
        let va = v_a[a_lo + kq * a_step];
        let vb = v_a[a_hi + kq * a_step];
        var a0: mat4x4<f32>; var a1: mat4x4<f32>; var a2: mat4x4<f32>; var a3: mat4x4<f32>;
        if (p.trans_a == 0u) {
            a0 = rows_from(va, 0u); a1 = rows_from(va, 4u); a2 = rows_from(vb, 0u); a3 = rows_from(vb, 4u);
        } else {
            a0 = cols_from(va, 0u); a1 = cols_from(va, 4u); a2 = cols_from(vb, 0u); a3 = cols_from(vb, 4u);
        }
        var b0: mat4x4<f32>; var b1: mat4x4<f32>;
        if (p.trans_b == 0u) {
            let q = 4u * kq * sn;
            b0 = vb_rows(bq0 + q, sn);
            b1 = vb_rows(bq1 + q, sn);
        } else {
            b0 = vb_cols(bo0, kq);
            b1 = vb_cols(bo1, kq);
        }
        c00 = c00 + b0 * a0; c01 = c01 + b1 * a0;
        c10 = c10 + b0 * a1; c11 = c11 + b1 * a1;
        c20 = c20 + b0 * a2; c21 = c21 + b1 * a2;
        c30 = c30 + b0 * a3; c31 = c31 + b1 * a3;
    }
    return Block16(c00, c01, c10, c11, c20, c21, c30, c31);
}

@compute @workgroup_size(64)
fn reg_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                @builtin(subgroup_invocation_id) sid: u32) {
    let j0 = (wid.x * 64u + lid) * 8u;
    if (subgroupAll(j0 >= p.n)) { return; }
    let acc = reg_subgroup_block(wid, lid, sid, j0);
    if (j0 >= p.n) { return; }
    let i0 = wid.y * 16u;
    let cbase = wid.z * p.m * p.n;
    store_block(cbase, i0, j0, acc.c00, acc.c01);
    store_block(cbase, i0 + 4u, j0, acc.c10, acc.c11);
    store_block(cbase, i0 + 8u, j0, acc.c20, acc.c21);
    store_block(cbase, i0 + 12u, j0, acc.c30, acc.c31);
}

// reg_subgroup for C rows a multiple of 4 long: vec4 stores (lavapipe stores lane by lane, as it
// loads; scalar stores were a third of a K = 256 product).
@compute @workgroup_size(64)
fn reg_subgroup_c4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                @builtin(subgroup_invocation_id) sid: u32) {
    let j0 = (wid.x * 64u + lid) * 8u;
    if (subgroupAll(j0 >= p.n)) { return; }
    let acc = reg_subgroup_block(wid, lid, sid, j0);
    if (j0 >= p.n) { return; }
    let i0 = wid.y * 16u;
    let cbase = wid.z * p.m * p.n;
    store_block4(cbase, i0, j0, acc.c00, acc.c01);
    store_block4(cbase, i0 + 4u, j0, acc.c10, acc.c11);
    store_block4(cbase, i0 + 8u, j0, acc.c20, acc.c21);
    store_block4(cbase, i0 + 12u, j0, acc.c30, acc.c31);
}

// reg_subgroup with 32 rows per workgroup (rows i0..i0+32, wid.y = block of 32 rows): twice the
// multiply-adds per load of B (each lane loads 4 vec4s of A and 8 of B per k-step for 1024
// multiply-adds, where reg_subgroup loads 2 and 8 for 512). Its 256 accumulators spill to the
// stack, and spill loads and stores cost far less than lavapipe's per-lane storage loads.
struct Block32 { c00: mat4x4<f32>, c01: mat4x4<f32>, c10: mat4x4<f32>, c11: mat4x4<f32>, c20: mat4x4<f32>, c21: mat4x4<f32>, c30: mat4x4<f32>, c31: mat4x4<f32>, c40: mat4x4<f32>, c41: mat4x4<f32>, c50: mat4x4<f32>, c51: mat4x4<f32>, c60: mat4x4<f32>, c61: mat4x4<f32>, c70: mat4x4<f32>, c71: mat4x4<f32> }

// The K loop of reg_subgroup32: this lane's 32 x 8 block of C for rows i0.., columns j0...
fn reg_subgroup32_block(wid: vec3<u32>, lid: u32, sid: u32, j0: u32) -> Block32 {
    let i0 = wid.y * 32u;
    let b = wid.z;
    let abase = b * p.a_batch;
    let bbase = b * p.b_batch;
    let steps = p.k / 4u;
    let sn = p.n / 4u;
    let l = sid % 8u;
    // This lane's share of A, as in reg_subgroup, for the two 16-row halves.
    var a_off: vec4<u32>; var a_step: u32;
    if (p.trans_a == 0u) {
        let s = p.k / 4u;
        a_off = abase / 4u + min(vec4<u32>(i0 + l, i0 + 8u + l, i0 + 16u + l, i0 + 24u + l), vec4<u32>(p.m - 1u)) * s;
        a_step = 1u;
    } else {
        let sm = p.m / 4u;
        let quad = i0 / 4u + l / 4u;
        a_off = abase / 4u + (l % 4u) * sm + min(vec4<u32>(quad, quad + 2u, quad + 4u, quad + 6u), vec4<u32>(sm - 1u));
        a_step = 4u * sm;
    }
    let bq0 = bbase / 4u + min(j0, p.n - 1u) / 4u;
    let bq1 = bbase / 4u + min(j0 + 4u, p.n - 1u) / 4u;
    let bo0 = line_offsets(bbase, j0, p.n, p.k);
    let bo1 = line_offsets(bbase, j0 + 4u, p.n, p.k);
    var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>(); var c11 = mat4x4<f32>();
    var c20 = mat4x4<f32>(); var c21 = mat4x4<f32>();
    var c30 = mat4x4<f32>(); var c31 = mat4x4<f32>();
    var c40 = mat4x4<f32>(); var c41 = mat4x4<f32>();
    var c50 = mat4x4<f32>(); var c51 = mat4x4<f32>();
    var c60 = mat4x4<f32>(); var c61 = mat4x4<f32>();
    var c70 = mat4x4<f32>(); var c71 = mat4x4<f32>();
    for (var kq = 0u; kq < steps; kq = kq + 1u) {
        let o = a_off + vec4<u32>(kq * a_step);
        let va = v_a[o.x];
        let vb = v_a[o.y];
        let vc = v_a[o.z];
        let vd = v_a[o.w];
        var b0: mat4x4<f32>; var b1: mat4x4<f32>;
        if (p.trans_b == 0u) {
            let q = 4u * kq * sn;
            b0 = vb_rows(bq0 + q, sn);
            b1 = vb_rows(bq1 + q, sn);
        } else {
            b0 = vb_cols(bo0, kq);
            b1 = vb_cols(bo1, kq);
        }
        var a0: mat4x4<f32>; var a1: mat4x4<f32>; var a2: mat4x4<f32>; var a3: mat4x4<f32>;
        var a4: mat4x4<f32>; var a5: mat4x4<f32>; var a6: mat4x4<f32>; var a7: mat4x4<f32>;
        if (p.trans_a == 0u) {
            a0 = rows_from(va, 0u); a1 = rows_from(va, 4u); a2 = rows_from(vb, 0u); a3 = rows_from(vb, 4u);
            a4 = rows_from(vc, 0u); a5 = rows_from(vc, 4u); a6 = rows_from(vd, 0u); a7 = rows_from(vd, 4u);
        } else {
            a0 = cols_from(va, 0u); a1 = cols_from(va, 4u); a2 = cols_from(vb, 0u); a3 = cols_from(vb, 4u);
            a4 = cols_from(vc, 0u); a5 = cols_from(vc, 4u); a6 = cols_from(vd, 0u); a7 = cols_from(vd, 4u);
        }
        c00 = c00 + b0 * a0; c01 = c01 + b1 * a0;
        c10 = c10 + b0 * a1; c11 = c11 + b1 * a1;
        c20 = c20 + b0 * a2; c21 = c21 + b1 * a2;
        c30 = c30 + b0 * a3; c31 = c31 + b1 * a3;
        c40 = c40 + b0 * a4; c41 = c41 + b1 * a4;
        c50 = c50 + b0 * a5; c51 = c51 + b1 * a5;
        c60 = c60 + b0 * a6; c61 = c61 + b1 * a6;
        c70 = c70 + b0 * a7; c71 = c71 + b1 * a7;
    }
    return Block32(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
}

@compute @workgroup_size(64)
fn reg_subgroup32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                  @builtin(subgroup_invocation_id) sid: u32) {
    let j0 = (wid.x * 64u + lid) * 8u;
    if (subgroupAll(j0 >= p.n)) { return; }
    let acc = reg_subgroup32_block(wid, lid, sid, j0);
    if (j0 >= p.n) { return; }
    let i0 = wid.y * 32u;
    let cbase = wid.z * p.m * p.n;
    store_block(cbase, i0, j0, acc.c00, acc.c01);
    store_block(cbase, i0 + 4u, j0, acc.c10, acc.c11);
    store_block(cbase, i0 + 8u, j0, acc.c20, acc.c21);
    store_block(cbase, i0 + 12u, j0, acc.c30, acc.c31);
    store_block(cbase, i0 + 16u, j0, acc.c40, acc.c41);
    store_block(cbase, i0 + 20u, j0, acc.c50, acc.c51);
    store_block(cbase, i0 + 24u, j0, acc.c60, acc.c61);
    store_block(cbase, i0 + 28u, j0, acc.c70, acc.c71);
}

// reg_subgroup32 for C rows a multiple of 4 long: vec4 stores (lavapipe stores lane by lane, as it
// loads; scalar stores were a third of a K = 256 product).
@compute @workgroup_size(64)
fn reg_subgroup32_c4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                  @builtin(subgroup_invocation_id) sid: u32) {
    let j0 = (wid.x * 64u + lid) * 8u;
    if (subgroupAll(j0 >= p.n)) { return; }
    let acc = reg_subgroup32_block(wid, lid, sid, j0);
    if (j0 >= p.n) { return; }
    let i0 = wid.y * 32u;
    let cbase = wid.z * p.m * p.n;
    store_block4(cbase, i0, j0, acc.c00, acc.c01);
    store_block4(cbase, i0 + 4u, j0, acc.c10, acc.c11);
    store_block4(cbase, i0 + 8u, j0, acc.c20, acc.c21);
    store_block4(cbase, i0 + 12u, j0, acc.c30, acc.c31);
    store_block4(cbase, i0 + 16u, j0, acc.c40, acc.c41);
    store_block4(cbase, i0 + 20u, j0, acc.c50, acc.c51);
    store_block4(cbase, i0 + 24u, j0, acc.c60, acc.c61);
    store_block4(cbase, i0 + 28u, j0, acc.c70, acc.c71);
}
