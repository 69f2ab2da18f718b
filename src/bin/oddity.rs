fn main() {
    println!("oddity");
}
