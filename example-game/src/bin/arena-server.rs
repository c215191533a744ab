//! arena-server: arriving with the server framework.
fn main() {}
