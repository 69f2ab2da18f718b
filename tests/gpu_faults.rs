//! GPU faults: a tensor larger than the adapter can bind is an error naming its shape, its size
//! and the device's limit, and the `oddity` CLI exits 2 with that message (no panic). The limit
//! is read from `oddity info`, so the test provokes the error on any adapter.
//! Device loss is tested beside the context (`kernels/src/context.rs`).

use std::process::Command;

fn oddity(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oddity")).args(args).output().unwrap()
}

#[test]
fn a_batch_too_large_for_the_device_exits_2_naming_size_and_limit() {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
        return;
    }
    let info = oddity(&["info"]);
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let info = String::from_utf8_lossy(&info.stdout);
    let mib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("max storage binding: ")?.strip_suffix(" MiB")?.parse().ok())
        .unwrap_or_else(|| panic!("no binding limit in `oddity info`:\n{info}"));
    // The demo's U-Net at 512x512 makes [batch, 32, 256, 256] f32 activations in its first layer
    // (8 MiB per image): pick the smallest even batch (the unet loss balances each batch) whose
    // activations pass the limit while its input, 8 times smaller, still fits.
    let per_image = 32 * 256 * 256 * 4;
    let batch = ((mib << 20) / per_image + 1).next_multiple_of(2);
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gpu_faults_demo");
    let (n, train) = (batch.to_string(), (batch * 4 / 3 + 4).to_string());
    let run = oddity(&[
        "demo", "--size", "512", "--train-images", &train, "--batch", &n, "--test-good", "1", "--test-defects", "1",
        "--epochs", "1", "--fpr", "0.5", "--no-progress", "--out", out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The driver may print its own lines first (Mesa's XDG_RUNTIME_DIR warning); ours is last.
    let stderr = stderr.lines().last().unwrap_or_default().to_string();
    assert!(stderr.starts_with("error: too large: tensor ["), "{stderr}");
    assert!(stderr.contains(&format!("[{batch}, ")), "the message names the tensor's shape: {stderr}");
    assert!(stderr.contains("over this device's storage binding limit of"), "{stderr}");
    // The two numbers: bytes needed > the limit, and the limit agrees with `oddity info`.
    let numbers: Vec<u64> = stderr
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .filter(|&v| v >= 1 << 20)
        .collect();
    let (needs, limit) = (numbers[numbers.len() - 2], numbers[numbers.len() - 1]);
    assert_eq!(limit >> 20, mib, "{stderr}");
    assert!(needs > limit, "{stderr}");
    println!("batch {batch}: {}", stderr.trim());
}
