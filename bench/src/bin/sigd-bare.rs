//! `sigd-bare`: the limit the benchmarks measure sigd against. A bare hyper
//! server that makes only the syscalls a signal needs (pidfd_open, one read
//! of `/proc/<pid>/stat`, pidfd_send_signal: issue 16's yardstick) and
//! answers a small JSON 200: no policy, no guard, no auth, no limits, no
//! log, no metrics. With `--poll` it learns whether the target has exited
//! as sigd's default policy does since WIT 0.3.2 (`open-alive`): a poll of
//! the pidfd instead of the `stat` read. Not a server for anything else;
//! `bench/run.py` runs it beside sigd.

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sigd::process::pidfd::{Liveness, Pidfd};
use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::TcpListener;

/// Answer `POST /api/v1/processes/{pid}/signal` with the bare syscalls (a
/// benchmark's limit; no checks at all).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where to listen: HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9002")]
    listen: SocketAddr,
    /// Poll the target's pidfd (has it exited?) instead of reading its
    /// `/proc/<pid>/stat`: sigd's own syscalls since WIT 0.3.2.
    #[arg(long)]
    poll: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let served = tokio::runtime::Runtime::new().and_then(|runtime| runtime.block_on(serve(args)));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sigd-bare: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Accept connections for ever, each served by hyper on a task of its own.
async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let poll = args.poll;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service = service_fn(move |request| signal(request, poll));
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service),
        );
    }
}

/// One request: the pid from the path, the signal from the body, and the
/// three syscalls.
async fn signal(
    request: Request<Incoming>,
    poll: bool,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let pid = request
        .uri()
        .path()
        .strip_prefix("/api/v1/processes/")
        .and_then(|rest| rest.strip_suffix("/signal"))
        .and_then(|pid| pid.parse::<i32>().ok());
    let body = request.into_body().collect().await?.to_bytes();
    let signal = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|body| body["signal"].as_i64())
        .and_then(|signal| i32::try_from(signal).ok());
    let (status, body) = match (pid, signal) {
        (Some(pid), Some(signal)) => match send(pid, signal, poll) {
            Ok(()) => (
                StatusCode::OK,
                format!(
                    r#"{{"success":true,"pid":{pid},"signal":{signal},"delivered_to":[{pid}]}}"#
                ),
            ),
            Err(error) => (StatusCode::NOT_FOUND, format!(r#"{{"error":"{error}"}}"#)),
        },
        _ => (StatusCode::BAD_REQUEST, r#"{"error":"bad request"}"#.into()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let json = hyper::header::HeaderValue::from_static("application/json");
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, json);
    Ok(response)
}

/// pidfd_open, one read of `/proc/<pid>/stat` (what sigd learned a
/// target's state from before WIT 0.3.2) or, with `poll`, a poll of the
/// pidfd (what it learns whether the target has exited from now),
/// pidfd_send_signal.
fn send(pid: i32, signal: i32, poll: bool) -> std::io::Result<()> {
    let pidfd = Pidfd::open(pid)?;
    if poll {
        if pidfd.liveness()? != Liveness::Running {
            return Err(std::io::ErrorKind::NotFound.into());
        }
    } else {
        let mut stat = [0; 1024];
        if std::fs::File::open(format!("/proc/{pid}/stat"))?.read(&mut stat)? == 0 {
            return Err(std::io::ErrorKind::NotFound.into());
        }
    }
    Ok(pidfd.send(signal)?)
}
