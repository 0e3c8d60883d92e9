//! `sigd-baseline`: the same endpoint, served by sigd's own host code, with
//! the default policy's logic linked natively instead of run as wasm. A
//! benchmark's yardstick, not a user mode: no token, no policy to swap, no
//! limits on the logic. `bench/run.py` runs it beside `sigd serve`.

use clap::Parser;
use sigd::cli::LogFormat;
use sigd::guard::GuardedTable;
use sigd::http::App;
use sigd::metrics::Metrics;
use sigd::process::System;
use sigd::serve::shutdown_signal;
use sigd::server::{self, Endpoint, Listener, SocketFile, TransportLimits};
use sigd_bench::Native;
use std::process::ExitCode;
use std::sync::Arc;

/// Serve the Send Signal API with the default policy linked natively
/// (a benchmark baseline; no authentication).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where to listen: HOST:PORT or unix:/PATH.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: Endpoint,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Logged as `sigd serve` logs (RUST_LOG, default `info`): lines queued
    // for a writer thread of their own, written to stderr many at a time.
    let mut log_writer = sigd::logs::init(LogFormat::Text, "info");
    log_writer.start();
    let runtime = match sigd::logs::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sigd-baseline: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let file = SocketFile {
            mode: 0o660,
            group: None,
        };
        let listener = match Listener::bind(&args.listen, file).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("sigd-baseline: cannot listen on {}: {error}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        if let Ok(endpoint) = listener.endpoint() {
            tracing::info!("listening on {endpoint}");
        }
        let app = Arc::new(App {
            decider: Arc::new(Native::default()),
            processes: GuardedTable::new(System),
            tokens: None,
            allowed_origins: Vec::new(),
            max_body_bytes: sigd::http::MAX_BODY_BYTES,
            body_timeout: sigd::http::BODY_TIMEOUT,
            metrics: Arc::new(Metrics::default()),
            shadow: None,
            answering: sigd::shares::Shares::of(TransportLimits::default().max_connections),
        });
        let shutdown = match shutdown_signal() {
            Ok(shutdown) => shutdown,
            Err(error) => {
                eprintln!("sigd-baseline: {error:#}");
                return ExitCode::FAILURE;
            }
        };
        // The same transport limits as `sigd serve` by default.
        server::run(vec![listener], app, TransportLimits::default(), shutdown).await;
        ExitCode::SUCCESS
    })
}
