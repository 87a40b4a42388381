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
    let args = wisp::Args::parse();
    let command = args.command.clone();
    let config = match wisp::Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wisp: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(wisp::config::Command::Token(t)) = command {
        return match wisp::auth::token_command(&config.auth.jwt, &t) {
            Ok(token) => {
                println!("{token}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wisp token: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
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
    match server.metrics_addr {
        Some(a) => println!("  metrics: http://{a}/metrics (and {base}/metrics)"),
        None => println!("  metrics: {base}/metrics"),
    }
    let udp = match config.ice_udp_port {
        Some(p) => format!("UDP {p} (single port)"),
        None => format!("UDP {}-{}", config.ice_ports.0, config.ice_ports.1),
    };
    println!(
        "  ICE:  {udp} on {:?}{}",
        config.public_ips,
        if config.auth.token.is_some() || config.auth.jwt.is_set() {
            ", a token required"
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
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("wisp: SIGTERM drain unavailable: {e}");
                None
            }
        };
    let drain = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break false,
            Some(()) = async { match terminate.as_mut() { Some(t) => t.recv().await, None => None } } => break true,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                match server.reload_tls() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!("SIGHUP: keeping the old TLS certificate: {e}"),
                }
            }
        }
    };
    let done = if drain {
        println!(
            "draining: no new sessions; sessions get up to {} s to end (SIGTERM again to exit now)",
            config.drain_timeout.as_secs()
        );
        let drained = server.drain(config.drain_timeout);
        tokio::select! {
            r = drained => r,
            Some(()) = async { match terminate.as_mut() { Some(t) => t.recv().await, None => None } } => {
                println!("second SIGTERM: exiting now");
                return std::process::ExitCode::SUCCESS;
            }
        }
    } else {
        println!("shutting down");
        server.shutdown().await
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wisp: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
