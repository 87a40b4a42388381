//! The `wisp` binary: flags/env/TOML → config, tracing, serve until Ctrl-C.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let scheme = if config.tls == wisp::config::Tls::Off {
        "http"
    } else {
        "https"
    };
    let base = format!("{scheme}://{}", server.addr);
    println!("wisp is running");
    println!("  page: {base}/");
    println!("  WHIP: {base}/whip/<room>      (e.g. {base}/whip/demo)");
    println!("  WHEP: {base}/whep/<room>      (e.g. {base}/whep/demo)");
    let udp = match config.ice_udp_port {
        Some(p) => format!("UDP {p} (single port)"),
        None => format!("UDP {}-{}", config.ice_ports.0, config.ice_ports.1),
    };
    println!(
        "  ICE:  {udp} on {:?}{}",
        config.public_ips,
        if config.token.is_some() {
            ", bearer token required"
        } else {
            ""
        }
    );
    if let Some(t) = &server.turn {
        println!(
            "  TURN: udp+tcp {}{}",
            t.udp_addr,
            t.tls_addr.map(|a| format!(", tls {a}")).unwrap_or_default()
        );
    }
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("wisp: SIGHUP reload unavailable: {e}");
            None
        }
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                match server.reload_tls() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!("SIGHUP: keeping the old TLS certificate: {e}"),
                }
            }
        }
    }
    println!("shutting down");
    match server.shutdown().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wisp: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
