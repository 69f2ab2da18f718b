//! `oddity-fuzz`: the plain-cargo fuzz driver.
//!
//! ```text
//! oddity-fuzz list
//! oddity-fuzz run <target|all> [--seconds N] [--seed S]    N seconds per target (default 30)
//! oddity-fuzz write-seeds                                 rebuild fuzz/corpus/ from seeds.rs
//! ```
//! Exits 1 when any input panicked (its bytes are in fuzz/crashes/<target>/), 2 on bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use oddity_fuzz::driver::{fuzz, install_quiet_panic_hook};
use oddity_fuzz::targets::{find, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\nusage: oddity-fuzz list | run <target|all> [--seconds N] [--seed S] | write-seeds");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for t in TARGETS {
                println!("{:<20} {}", t.name, t.about);
            }
            ExitCode::SUCCESS
        }
        Some("write-seeds") => {
            for (target, name, bytes) in oddity_fuzz::seeds::seeds() {
                let dir = fuzz_dir().join("corpus").join(target);
                std::fs::create_dir_all(&dir).expect("create corpus folder");
                std::fs::write(dir.join(&name), bytes).expect("write seed");
            }
            println!("wrote seeds under {}", fuzz_dir().join("corpus").display());
            ExitCode::SUCCESS
        }
        Some("run") => {
            let Some(which) = args.get(1) else { return usage("run needs a target or `all`") };
            let mut seconds = 30.0;
            let mut seed = 0u64;
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                let value = rest.next();
                match (flag.as_str(), value.map(|v| v.parse::<f64>())) {
                    ("--seconds", Some(Ok(v))) if v >= 0.0 => seconds = v,
                    ("--seed", Some(Ok(v))) if v >= 0.0 && v.fract() == 0.0 => seed = v as u64,
                    _ => return usage(&format!("bad flag {flag} {}", value.map_or("", |s| s.as_str()))),
                }
            }
            let targets: Vec<_> = if which == "all" {
                TARGETS.iter().collect()
            } else {
                match find(which) {
                    Some(t) => vec![t],
                    None => return usage(&format!("no target {which}; `oddity-fuzz list` names them")),
                }
            };
            install_quiet_panic_hook();
            let mut crashes = 0;
            println!("seed {seed}, {seconds} s per target");
            for t in targets {
                let corpus = fuzz_dir().join("corpus").join(t.name);
                let crash_dir = fuzz_dir().join("crashes").join(t.name);
                let outcome = match fuzz(t, &corpus, &crash_dir, seconds, seed) {
                    Ok(o) => o,
                    Err(e) => {
                        eprintln!("error: {}: {e}", t.name);
                        return ExitCode::from(2);
                    }
                };
                if let Some(why) = outcome.skipped {
                    println!("{:<20} skipped: {why}", t.name);
                    continue;
                }
                println!(
                    "{:<20} {:>8} inputs ({} corpus + {} mutated, {} accepted) in {:.1} s, {} crashes",
                    t.name,
                    outcome.corpus + outcome.mutated,
                    outcome.corpus,
                    outcome.mutated,
                    outcome.accepted,
                    outcome.seconds,
                    outcome.crashes.len()
                );
                crashes += outcome.crashes.len();
            }
            if crashes > 0 {
                eprintln!("{crashes} crashing inputs kept under {}", fuzz_dir().join("crashes").display());
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => usage("no command"),
    }
}
