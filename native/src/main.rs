// Temporary (mock endpoint author): compiles mock.rs until the real main.rs lands.
#[allow(dead_code)]
mod mock;

fn main() {}
