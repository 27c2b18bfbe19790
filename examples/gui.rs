//! The GUI client: `cargo run --release --features gui --example gui [HOST [PORT]] [OPTIONS]`.
//! It takes the terminal client's options (`--ca`, `--cert`, `--key`, `--no-tls`, `--name`) to
//! fill the connect form; everything else happens in the window.

use securetcp::client::{ClientCommand, USAGE_LINE, parse_args, usage};
use securetcp::gui::{ConnectForm, run};

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let form = match parse_args(&args) {
        Ok(ClientCommand::Run(options)) => ConnectForm::from_options(&options),
        Ok(ClientCommand::Help) => {
            println!("{}", usage().replacen("client", "gui", 1));
            return;
        }
        Ok(ClientCommand::Version) => {
            println!("securetcp gui {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(why) => {
            eprintln!(
                "error: {why}\n{}; try --help for the options",
                USAGE_LINE.replacen("client", "gui", 1)
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(form) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
