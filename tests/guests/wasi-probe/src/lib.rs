//! A test policy that imports WASI and reports what sigd gave it, so the
//! tests can prove a third-party guest gets nothing: no environment, no
//! arguments, no directories, no network; and that its stdout and stderr
//! reach sigd's log.
//!
//! The body picks what it does: `{"flood": N}` writes N bytes to stdout
//! (past the output cap, where writes are dropped); anything else answers 200 with
//! `{"env": 0, "args": 0, "preopens": 0, "tcp": "access-denied", "dns": "..."}`.

wit_bindgen::generate!({
    path: "wit",
    world: "probe",
    generate_all,
});

use exports::sigd::policy::handler::{Guest, Request, Response};
use serde_json::{Value, json};
use wasi::cli::{environment, stderr, stdout};
use wasi::filesystem::preopens;
use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi::sockets::{instance_network, ip_name_lookup, tcp_create_socket};

struct Probe;

impl Guest for Probe {
    fn configure(_settings: Option<String>) -> Result<(), String> {
        Ok(())
    }

    fn handle_signal(request: Request) -> Response {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        if let Some(bytes) = body["flood"].as_u64() {
            let chunk = vec![b'x'; 4096];
            let out = stdout::get_stdout();
            for _ in 0..bytes.div_ceil(4096) {
                let _ = out.blocking_write_and_flush(&chunk);
            }
        }
        let _ = stdout::get_stdout().blocking_write_and_flush(b"probe: hello on stdout\n");
        let _ = stderr::get_stderr().blocking_write_and_flush(b"probe: hello on stderr\n");
        Response {
            status: 200,
            body: json!({
                "env": environment::get_environment().len(),
                "args": environment::get_arguments().len(),
                "preopens": preopens::get_directories().len(),
                "tcp": tcp(),
                "dns": dns(),
            })
            .to_string(),
        }
    }
}

/// What happens when the guest tries to connect to 127.0.0.1:9.
fn tcp() -> String {
    let network = instance_network::instance_network();
    let socket = match tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Ok(socket) => socket,
        Err(error) => return error.name().into(),
    };
    let address = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 9,
        address: (127, 0, 0, 1),
    });
    match socket.start_connect(&network, address) {
        Ok(()) => "connecting".into(),
        Err(error) => error.name().into(),
    }
}

/// What happens when the guest tries to resolve a name.
fn dns() -> String {
    let network = instance_network::instance_network();
    match ip_name_lookup::resolve_addresses(&network, "localhost") {
        Ok(_) => "resolving".into(),
        Err(error) => error.name().into(),
    }
}

export!(Probe);
