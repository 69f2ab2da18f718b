// Batched matmul with transposed-operand variants: C[b] = op(A[b]) @ op(B[b]), op = identity or
// transpose. op(A) is [M, K], op(B) is [K, N], C is [batch, M, N] row-major.
// Storage: A is [M, K] or, with trans_a, [K, M]; B is [K, N] or, with trans_b, [N, K].
// A batch stride of 0 broadcasts a 2-D operand across the batch.
// Three entry points, chosen in kernels/src/matmul.rs:
//   tiled       workgroup-memory 64x64 tiles, 4x4 outputs per thread: real GPUs.
//   reg_vec4    no workgroup memory, 8 rows x 8 columns per thread, vec4 loads of both operands
//               along their contiguous dimension: software drivers (lavapipe), where barriers are
//               expensive and each invocation is one SIMD lane. Needs K and both operands'
//               contiguous dimensions to be multiples of 4.
//   reg_scalar  a 4 x 8 register block with scalar loads, for every other shape.
// CPU reference: kernels/src/matmul.rs (`cpu`).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    trans_a: u32,
    trans_b: u32,
    a_batch: u32,   // elements between batches of A (0: broadcast)
    b_batch: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---------------------------------------------------------------------------------------------
// tiled: 256 threads (16 x 16) per 64x64 tile of C; K in steps of 16 staged in workgroup memory.

const TM: u32 = 64u;
const TK: u32 = 16u;

@group(0) @binding(1) var<storage, read> t_a: array<f32>;
@group(0) @binding(2) var<storage, read> t_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> t_c: array<f32>;

// k-major tiles: As[kk * 64 + m], Bs[kk * 64 + n], so the inner loop reads rows of both.
var<workgroup> t_as: array<f32, 1024>;
var<workgroup> t_bs: array<f32, 1024>;

// op(A)[m, k] of this batch, zero outside the matrix.
fn t_load_a(base: u32, m: u32, k: u32) -> f32 {
    if (m >= p.m || k >= p.k) { return 0.0; }
    if (p.trans_a != 0u) { return t_a[base + k * p.m + m]; }
    return t_a[base + m * p.k + k];
}

// op(B)[k, n] of this batch, zero outside the matrix.
fn t_load_b(base: u32, k: u32, n: u32) -> f32 {
    if (k >= p.k || n >= p.n) { return 0.0; }
    if (p.trans_b != 0u) { return t_b[base + n * p.k + k]; }
    return t_b[base + k * p.n + n];
}

@compute @workgroup_size(16, 16, 1)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let b = wid.z;
    let abase = b * p.a_batch;
    let bbase = b * p.b_batch;
    let m0 = wid.y * TM;
    let n0 = wid.x * TM;
    var acc: array<vec4<f32>, 4>;   // acc[r][c]: row m0 + ty + 16r, column n0 + tx + 16c
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TK) {
        // 1024 elements per tile, 4 per thread; consecutive threads walk the operand's contiguous
        // dimension so global reads coalesce.
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = li + 256u * r;
            var am: u32; var ak: u32;
            if (p.trans_a != 0u) { am = e % TM; ak = e / TM; } else { am = e / TK; ak = e % TK; }
            t_as[ak * TM + am] = t_load_a(abase, m0 + am, k0 + ak);
            var bn: u32; var bk: u32;
            if (p.trans_b != 0u) { bn = e / TK; bk = e % TK; } else { bn = e % TM; bk = e / TM; }
            t_bs[bk * TM + bn] = t_load_b(bbase, k0 + bk, n0 + bn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            let bv = vec4<f32>(t_bs[kk * TM + lid.x], t_bs[kk * TM + lid.x + 16u],
                               t_bs[kk * TM + lid.x + 32u], t_bs[kk * TM + lid.x + 48u]);
            acc[0] = acc[0] + t_as[kk * TM + lid.y] * bv;
            acc[1] = acc[1] + t_as[kk * TM + lid.y + 16u] * bv;
            acc[2] = acc[2] + t_as[kk * TM + lid.y + 32u] * bv;
            acc[3] = acc[3] + t_as[kk * TM + lid.y + 48u] * bv;
        }
        workgroupBarrier();
    }
    let cbase = b * p.m * p.n;
    for (var r = 0u; r < 4u; r = r + 1u) {
        let m = m0 + lid.y + 16u * r;
        if (m >= p.m) { continue; }
        for (var c = 0u; c < 4u; c = c + 1u) {
            let n = n0 + lid.x + 16u * c;
            if (n < p.n) { t_c[cbase + m * p.n + n] = acc[r][c]; }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Register-blocked variants, for software drivers (lavapipe) where each invocation is one lane
// of a CPU SIMD register, every storage load is a per-lane loop (so loads, not arithmetic, set
// the pace) and barriers are expensive. A thread keeps a block of C in 4x4 matrices whose
// column r is one row of C over 4 columns. A k-step of 4 multiplies 4x4 blocks:
//   Cl += Bl * Am, Am's column r = A[i+r, k..k+4], Bl's column kk = B[k+kk, j..j+4],
// i.e. Cl[r] = sum_kk A[i+r, k+kk] * B[k+kk, j..j+4]. Rows and columns past the edge are
// clamped to the last valid one on load (any finite value will do) and never stored.
// Measured on lavapipe, 512^3 (2 cores): 4 x 8 outputs per thread ~11-12 GFLOP/s, 8 x 8 ~15-16
// (fewer loads per multiply-add; larger blocks gain little more and waste work on edges).

@group(0) @binding(1) var<storage, read> v_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> v_c: array<f32>;

// Loads of 4x4 blocks for k-step kq (k = 4 kq .. 4 kq + 4). Offsets are in vec4 units and
// precomputed outside the k loop; the four transpose combinations each get their own loop, so
// the loop body carries no branch. A transpose of four vec4s costs nothing on a
// SIMD-across-invocations driver, where each component is its own register.

// A stored [M, K]: o holds rows i0..i0+4 (clamped); column r = A[i0+r, k..k+4].
fn va_rows(o: vec4<u32>, kq: u32) -> mat4x4<f32> {
    return mat4x4<f32>(v_a[o.x + kq], v_a[o.y + kq], v_a[o.z + kq], v_a[o.w + kq]);
}

// A stored [K, M] (M % 4 == 0): q is row k of the storage at columns i0..i0+4, s = M / 4.
fn va_cols(q: u32, s: u32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(v_a[q], v_a[q + s], v_a[q + 2u * s], v_a[q + 3u * s]));
}

// B stored [K, N] (N % 4 == 0): q is row k at columns j..j+4, s = N / 4; column kk = B[k+kk, j..j+4].
fn vb_rows(q: u32, s: u32) -> mat4x4<f32> {
    return mat4x4<f32>(v_b[q], v_b[q + s], v_b[q + 2u * s], v_b[q + 3u * s]);
}

// B stored [N, K]: o holds columns j..j+4 (clamped); column kk = B[k+kk, j..j+4].
fn vb_cols(o: vec4<u32>, kq: u32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(v_b[o.x + kq], v_b[o.y + kq], v_b[o.z + kq], v_b[o.w + kq]));
}

// Offsets (vec4 units) of the starts of lines i..i+4 of a [lines, line_len] matrix, clamped to
// the last line.
fn line_offsets(base: u32, i: u32, lines: u32, line_len: u32) -> vec4<u32> {
    let last = lines - 1u;
    let s = line_len / 4u;
    let b = base / 4u;
    return vec4<u32>(b + min(i, last) * s, b + min(i + 1u, last) * s,
                     b + min(i + 2u, last) * s, b + min(i + 3u, last) * s);
}

// Writes C[i0..i0+4, j0..j0+8] from the two accumulators, skipping what lies past the edges.
fn store_block(cbase: u32, i0: u32, j0: u32, lo: mat4x4<f32>, hi: mat4x4<f32>) {
    for (var r = 0u; r < 4u; r = r + 1u) {
        let i = i0 + r;
        if (i >= p.m) { return; }
        let row = cbase + i * p.n;
        for (var c = 0u; c < 4u; c = c + 1u) {
            if (j0 + c < p.n) { v_c[row + j0 + c] = lo[r][c]; }
            if (j0 + 4u + c < p.n) { v_c[row + j0 + 4u + c] = hi[r][c]; }
        }
    }
}

// reg_vec4: 8 x 8 outputs per thread (C[i0..i0+8, j0..j0+8] in c00 c01 / c10 c11), workgroup
// 8 x 8 threads = 64 x 64 of C.
@compute @workgroup_size(8, 8, 1)
fn reg_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j0 = gid.x * 8u;
    let i0 = gid.y * 8u;
    if (j0 >= p.n || i0 >= p.m) { return; }
    let b = gid.z;
    let abase = b * p.a_batch;
    let bbase = b * p.b_batch;
    let steps = p.k / 4u;
    let sm = p.m / 4u;
    let sn = p.n / 4u;
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    let ao0 = line_offsets(abase, i0, p.m, p.k);
    let at0 = abase / 4u + min(i0, p.m - 1u) / 4u;
    let ao1 = line_offsets(abase, i0 + 4u, p.m, p.k);
    let at1 = abase / 4u + min(i0 + 4u, p.m - 1u) / 4u;
    let bq0 = bbase / 4u + min(j0, p.n - 1u) / 4u;
    let bo0 = line_offsets(bbase, j0, p.n, p.k);
    let bq1 = bbase / 4u + min(j0 + 4u, p.n - 1u) / 4u;
    let bo1 = line_offsets(bbase, j0 + 4u, p.n, p.k);
    if (p.trans_a == 0u && p.trans_b == 0u) {
        for (var kq = 0u; kq < steps; kq = kq + 1u) {
            let q = 4u * kq * sn;
            let a0 = va_rows(ao0, kq);
            let a1 = va_rows(ao1, kq);
            let b0 = vb_rows(bq0 + q, sn);
            let b1 = vb_rows(bq1 + q, sn);
            c00 = c00 + b0 * a0;
            c01 = c01 + b1 * a0;
            c10 = c10 + b0 * a1;
            c11 = c11 + b1 * a1;
        }
    } else if (p.trans_a == 0u) {
        for (var kq = 0u; kq < steps; kq = kq + 1u) {
            let a0 = va_rows(ao0, kq);
            let a1 = va_rows(ao1, kq);
            let b0 = vb_cols(bo0, kq);
            let b1 = vb_cols(bo1, kq);
            c00 = c00 + b0 * a0;
            c01 = c01 + b1 * a0;
            c10 = c10 + b0 * a1;
            c11 = c11 + b1 * a1;
        }
    } else if (p.trans_b == 0u) {
        for (var kq = 0u; kq < steps; kq = kq + 1u) {
            let q = 4u * kq * sn;
            let a0 = va_cols(at0 + 4u * kq * sm, sm);
            let a1 = va_cols(at1 + 4u * kq * sm, sm);
            let b0 = vb_rows(bq0 + q, sn);
            let b1 = vb_rows(bq1 + q, sn);
            c00 = c00 + b0 * a0;
            c01 = c01 + b1 * a0;
            c10 = c10 + b0 * a1;
            c11 = c11 + b1 * a1;
        }
    } else {
        for (var kq = 0u; kq < steps; kq = kq + 1u) {
            let a0 = va_cols(at0 + 4u * kq * sm, sm);
            let a1 = va_cols(at1 + 4u * kq * sm, sm);
            let b0 = vb_cols(bo0, kq);
            let b1 = vb_cols(bo1, kq);
            c00 = c00 + b0 * a0;
            c01 = c01 + b1 * a0;
            c10 = c10 + b0 * a1;
            c11 = c11 + b1 * a1;
        }
    }
    let cbase = b * p.m * p.n;
    store_block(cbase, i0, j0, c00, c01);
    store_block(cbase, i0 + 4u, j0, c10, c11);
}

@group(0) @binding(1) var<storage, read> s_a: array<f32>;
@group(0) @binding(2) var<storage, read> s_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> s_c: array<f32>;

// op(A)[min(i, M-1), k]
fn s_a_at(base: u32, i: u32, k: u32) -> f32 {
    let ii = min(i, p.m - 1u);
    if (p.trans_a != 0u) { return s_a[base + k * p.m + ii]; }
    return s_a[base + ii * p.k + k];
}

// op(B)[k, min(j, N-1)]
fn s_b_at(base: u32, k: u32, j: u32) -> f32 {
    let jj = min(j, p.n - 1u);
    if (p.trans_b != 0u) { return s_b[base + jj * p.k + k]; }
    return s_b[base + k * p.n + jj];
}

// reg_scalar: 4 x 8 outputs per thread, workgroup 8 x 8 threads = 32 x 64 of C; one k per step.
@compute @workgroup_size(8, 8, 1)
fn reg_scalar(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j0 = gid.x * 8u;
    let i0 = gid.y * 4u;
    if (j0 >= p.n || i0 >= p.m) { return; }
    let b = gid.z;
    let abase = b * p.a_batch;
    let bbase = b * p.b_batch;
    var lo = mat4x4<f32>();
    var hi = mat4x4<f32>();
    for (var k = 0u; k < p.k; k = k + 1u) {
        let a = vec4<f32>(s_a_at(abase, i0, k), s_a_at(abase, i0 + 1u, k),
                          s_a_at(abase, i0 + 2u, k), s_a_at(abase, i0 + 3u, k));
        let bl = vec4<f32>(s_b_at(bbase, k, j0), s_b_at(bbase, k, j0 + 1u),
                           s_b_at(bbase, k, j0 + 2u), s_b_at(bbase, k, j0 + 3u));
        let bh = vec4<f32>(s_b_at(bbase, k, j0 + 4u), s_b_at(bbase, k, j0 + 5u),
                           s_b_at(bbase, k, j0 + 6u), s_b_at(bbase, k, j0 + 7u));
        // Outer products: column r gains A[i0+r, k] * B[k, j..].
        lo = lo + mat4x4<f32>(bl * a.x, bl * a.y, bl * a.z, bl * a.w);
        hi = hi + mat4x4<f32>(bh * a.x, bh * a.y, bh * a.z, bh * a.w);
    }
    // Same store as store_block, but through this entry point's own binding.
    let cbase = b * p.m * p.n;
    for (var r = 0u; r < 4u; r = r + 1u) {
        let i = i0 + r;
        if (i >= p.m) { return; }
        let row = cbase + i * p.n;
        for (var c = 0u; c < 4u; c = c + 1u) {
            if (j0 + c < p.n) { s_c[row + j0 + c] = lo[r][c]; }
            if (j0 + 4u + c < p.n) { s_c[row + j0 + 4u + c] = hi[r][c]; }
        }
    }
}
