// Draws an image with a heatmap over it (examples/embed_heatmap.rs): one full-screen triangle;
// each fragment blends the heatmap's colour over the image's by the heatmap's alpha. Image,
// heatmap and target have the same size, so texels are read by pixel position (no sampler).

@group(0) @binding(0) var image: texture_2d<f32>;
@group(0) @binding(1) var heat: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // Vertices (-1, -1), (3, -1), (-1, 3): a triangle that covers the whole target.
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let p = vec2<i32>(pos.xy);
    let base = textureLoad(image, p, 0);
    let h = textureLoad(heat, p, 0);
    return vec4<f32>(mix(base.rgb, h.rgb, h.a), 1.0);
}
