//! Prints the registered platforms, one a line:
//! `cargo run -p unilogin --example platforms --features full`.

fn main() {
    for name in unilogin::Registry::names() {
        println!("{name}");
    }
}
