//! The `wisp` binary: flags/env/TOML → config, tracing, serve until Ctrl-C.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("WISP_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match wisp::Config::from_args(wisp::Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wisp: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let server = match wisp::Server::start(config.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wisp: cannot start on {}: {e}", config.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    let base = format!("http://{}", server.addr);
    println!("wisp is running");
    println!("  page: {base}/");
    println!("  WHIP: {base}/whip/<room>      (e.g. {base}/whip/demo)");
    println!("  WHEP: {base}/whep/<room>      (e.g. {base}/whep/demo)");
    println!(
        "  ICE:  UDP {}-{} on {:?}{}",
        config.ice_ports.0,
        config.ice_ports.1,
        config.public_ips,
        if config.token.is_some() {
            ", bearer token required"
        } else {
            ""
        }
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("shutting down");
    match server.shutdown().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wisp: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
