//! The blocking securetcp client: `cargo run --release --example client -- [OPTIONS] [HOST [PORT]]`.
//! Everything it does lives in `securetcp::client`; this is only the entry point.

use std::process::ExitCode;

use securetcp::client::{self, ClientCommand};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match client::parse_args(&args) {
        Ok(ClientCommand::Run(options)) => client::run(options),
        Ok(ClientCommand::Help) => {
            println!("{}", client::usage());
            0
        }
        Ok(ClientCommand::Version) => {
            println!("client {}", securetcp::service::VERSION);
            0
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{}", client::usage());
            2
        }
    };
    ExitCode::from(code as u8)
}
