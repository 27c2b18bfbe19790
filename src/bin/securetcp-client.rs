//! The terminal client as an installable program, `securetcp-client` (cargo feature `client`:
//! `cargo install --path . --features client`). Its source is the example's, `examples/client/`
//! (`cargo run --example client`), taken in whole as a module: one program under two names.

#[path = "../../examples/client/main.rs"]
mod client;

fn main() -> std::process::ExitCode {
    client::main()
}
