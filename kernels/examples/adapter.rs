//! Prints the adapter oddity would use (honours ODDITY_BACKEND and ODDITY_ADAPTER).
fn main() {
    match oddity_kernels::Context::new() {
        Ok(ctx) => println!("adapter: {}", ctx.adapter_name()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
