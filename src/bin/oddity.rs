//! The `oddity` binary: a thin wrapper around [`oddity::cli::run`].

fn main() {
    if let Err(error) = oddity::cli::run() {
        eprintln!("error: {error}");
        std::process::exit(2);
    }
}
