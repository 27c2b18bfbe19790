//! The GUI client as an installable program, `securetcp-gui` (cargo feature `gui`:
//! `cargo install --path . --features gui`). Its source is the example's, `examples/gui.rs`
//! (`cargo run --features gui --example gui`), taken in whole as a module: one program under
//! two names.

#[path = "../../examples/gui.rs"]
mod gui;

fn main() {
    gui::main()
}
