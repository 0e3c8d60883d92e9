//! The transport: [`run`] takes bound listeners (TCP or Unix socket, bound
//! here or handed in by a service manager), accepts connections up to a
//! cap (see [`crate::connections`] for who makes room when it is reached),
//! serves each with hyper (HTTP/1.1 only,
//! with header timeout and limits), and on shutdown stops accepting, lets
//! in-flight requests finish within a drain limit, and closes the rest.

use crate::caller::Peer;
use crate::connections::{Activity, Connections, State};
use crate::http::{self, App};
use crate::logs;
use crate::shares::Holder;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

/// Limits of the transport.
#[derive(Debug, Clone, Copy)]
pub struct TransportLimits {
    /// Connections served at once; past it, a newcomer takes the slot of
    /// the one idle longest (never one whose request is being answered).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers; hyper starts
    /// the clock when it waits for a request, so this also closes keep-alive
    /// connections that stay idle this long.
    pub header_timeout: Duration,
    /// Most request headers; more get 431.
    pub max_headers: usize,
    /// Most bytes of request line and headers; more get 431 (at least 8192).
    pub max_header_bytes: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain: Duration,
}

impl Default for TransportLimits {
    /// `sigd serve`'s defaults (and the baseline's).
    fn default() -> TransportLimits {
        TransportLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(5),
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// Where sigd listens: `127.0.0.1:9000`, `[::1]:9000` or `unix:/run/sigd.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Endpoint, String> {
        match text.strip_prefix("unix:") {
            Some(path) if path.starts_with('/') => Ok(Endpoint::Unix(PathBuf::from(path))),
            Some(_) => Err("a unix socket needs an absolute path: unix:/run/sigd.sock".into()),
            None => text.parse().map(Endpoint::Tcp).map_err(|_| {
                format!("{text:?} is neither HOST:PORT (127.0.0.1:9000, [::1]:9000) nor unix:/PATH")
            }),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "http://{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Endpoint {
    /// Whether only this machine can reach it (loopback, or a Unix socket).
    pub fn is_local(&self) -> bool {
        match self {
            Endpoint::Tcp(addr) => addr.ip().is_loopback(),
            Endpoint::Unix(_) => true,
        }
    }
}

/// A bound listening socket.
pub enum Listener {
    Tcp(TcpListener),
    /// A Unix socket at `path`; if sigd made it (`made`), the file is
    /// removed when the listener is dropped, while one handed in is left
    /// to whoever made it.
    Unix {
        listener: UnixListener,
        path: PathBuf,
        made: bool,
    },
}

/// A socket sigd answers on.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// How a Unix socket file is made: its mode and, if given, its group.
#[derive(Debug, Clone, Copy)]
pub struct SocketFile {
    pub mode: u32,
    pub group: Option<nix::unistd::Gid>,
}

impl Listener {
    /// Bind `endpoint`. A Unix socket is made with `file`'s mode and group
    /// from its first instant (see [`bind_unix`]); a stale socket file (no
    /// one answers on it) is replaced, a live one is an error.
    pub async fn bind(endpoint: &Endpoint, file: SocketFile) -> io::Result<Listener> {
        match endpoint {
            Endpoint::Tcp(addr) => TcpListener::bind(addr).await.map(Listener::Tcp),
            Endpoint::Unix(path) => {
                remove_stale_socket(path).await?;
                let listener = bind_unix(path, file)?;
                Ok(Listener::Unix {
                    listener,
                    path: path.clone(),
                    made: true,
                })
            }
        }
    }

    /// A listening socket handed in already bound (socket activation, see
    /// [`systemd::listen_fds`](crate::systemd::listen_fds)): TCP or Unix,
    /// by its address family. Anything else, or a socket that does not
    /// listen, is refused.
    pub fn from_fd(socket: OwnedFd) -> io::Result<Listener> {
        use nix::sys::socket::{
            AddressFamily, SockaddrLike, SockaddrStorage, getsockname, sockopt,
        };
        let refuse = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_string()));
        if !nix::sys::socket::getsockopt(&socket, sockopt::AcceptConn)? {
            return refuse("a socket handed in does not listen (a stream socket is needed)");
        }
        let address: SockaddrStorage = getsockname(socket.as_raw_fd())?;
        match address.family() {
            Some(AddressFamily::Inet | AddressFamily::Inet6) => {
                let listener = std::net::TcpListener::from(socket);
                listener.set_nonblocking(true)?;
                TcpListener::from_std(listener).map(Listener::Tcp)
            }
            Some(AddressFamily::Unix) => {
                let listener = std::os::unix::net::UnixListener::from(socket);
                listener.set_nonblocking(true)?;
                let address = listener.local_addr()?;
                let path = match address.as_pathname() {
                    Some(path) => path.to_path_buf(),
                    None => PathBuf::from("(unnamed)"),
                };
                let listener = UnixListener::from_std(listener)?;
                Ok(Listener::Unix {
                    listener,
                    path,
                    made: false,
                })
            }
            _ => refuse("a socket handed in is neither TCP nor a Unix socket"),
        }
    }

    /// Where it listens, with the port the kernel picked for port 0.
    pub fn endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(Endpoint::Tcp),
            Listener::Unix { path, .. } => Ok(Endpoint::Unix(path.clone())),
        }
    }

    /// The next connection, and who is at its other end.
    async fn accept(&self) -> io::Result<(Box<dyn Connection>, Peer)> {
        match self {
            Listener::Tcp(listener) => loop {
                let (stream, remote) = listener.accept().await?;
                // Answers are one write each: send them at once.
                let peer = stream
                    .set_nodelay(true)
                    .and_then(|()| Peer::tcp(&stream, remote));
                // A client gone before it could be told (`Peer::tcp`), or a
                // connection sigd cannot set up, is that connection's
                // failure, not the listener's: closed, and the next taken.
                if let Ok(Some(peer)) = peer {
                    return Ok((Box::new(stream), peer));
                }
            },
            Listener::Unix { listener, .. } => {
                let (stream, _) = listener.accept().await?;
                let peer = Peer::unix(&stream);
                Ok((Box::new(stream), peer))
            }
        }
    }
}

/// What keeps the other loopback address on a loopback listener's port
/// (`[::1]:P` beside `127.0.0.1:P`, and back) from anyone else: a client
/// that reaches sigd as `localhost` tries both, and would hand whoever
/// listened on the other its requests, bearer token and all. Each is bound
/// and never listens, so a client there is refused at once and tries the
/// next address. None for port 0 (a port the kernel picked is known only
/// by its number) or where the machine has no such address.
pub fn hold_loopback_siblings(listening: &[Endpoint]) -> io::Result<Vec<OwnedFd>> {
    use nix::errno::Errno;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, bind, socket};
    let mut held = Vec::new();
    for endpoint in listening {
        let Endpoint::Tcp(addr) = endpoint else {
            continue;
        };
        let sibling = match addr {
            _ if addr.port() == 0 => continue,
            SocketAddr::V4(v4) if *v4.ip() == std::net::Ipv4Addr::LOCALHOST => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v4.port()))
            }
            SocketAddr::V6(v6) if *v6.ip() == std::net::Ipv6Addr::LOCALHOST => {
                SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, v6.port()))
            }
            _ => continue,
        };
        if listening.contains(&Endpoint::Tcp(sibling)) {
            continue;
        }
        let family = match sibling {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let bound =
            socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).and_then(|held| {
                bind(held.as_raw_fd(), &SockaddrStorage::from(sibling)).map(|()| held)
            });
        match bound {
            Ok(socket) => {
                debug!(%sibling, "held so that no one else listens there");
                held.push(socket);
            }
            Err(Errno::EADDRINUSE) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{sibling} is taken by another process, beside {addr}: a client that \
                         reaches sigd as localhost may talk to it instead, and hand it its \
                         token; stop it, or have sigd listen on {sibling} too (--listen, or \
                         a ListenStream= in its socket unit)"
                    ),
                ));
            }
            // No such address on this machine: no one can listen there.
            Err(Errno::EAFNOSUPPORT | Errno::EADDRNOTAVAIL) => {}
            Err(error) => {
                warn!(%sibling, %error, "cannot hold the other loopback address: anyone may listen there")
            }
        }
    }
    Ok(held)
}

/// Whether `dir`, and every directory above it (as named, and as it
/// resolves), is one no one but root or sigd's user may change: in a
/// directory others may write to, nothing sigd names by path stays sigd's.
/// They could replace the socket or, sticky as /tmp is, take its name
/// whenever sigd is not running (it removes the socket when it stops); and
/// whoever may write a directory above may move the one below away and put
/// their own in its place. Either way they are handed clients' requests,
/// tokens and all. A sticky directory above is fine: no one else may move
/// what root or sigd owns in it.
fn no_one_else_may_move(dir: &Path) -> io::Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    let resolved = std::fs::canonicalize(dir)?;
    for (at, above) in [dir, &resolved]
        .into_iter()
        .flat_map(|path| path.ancestors().enumerate())
    {
        let meta = std::fs::metadata(above)?;
        let (mode, owner) = (meta.permissions().mode(), meta.uid());
        let shared = mode & 0o022 != 0 && (at == 0 || mode & 0o1000 == 0);
        if shared || (owner != 0 && owner != me) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} may be written by other users (mode {:o}, owner uid {owner}): they could \
                     replace the socket in {}, or take its name while sigd is stopped; put it in \
                     a directory only root or sigd's user may write to, such as /run/sigd",
                    above.display(),
                    mode & 0o7777,
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Bind a Unix socket at `path` that no one else can reach before it has
/// its final mode and group: it is bound inside a fresh directory only sigd
/// may enter (beside `path`, so its own path is at most 16 bytes longer),
/// given `file`'s mode and group there, then renamed into place
/// (atomically: the path goes from nothing, or a stale socket, to the
/// finished socket).
fn bind_unix(path: &Path, file: SocketFile) -> io::Result<UnixListener> {
    let parent = match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Path::new("."),
        parent => parent.unwrap_or(Path::new("/")),
    };
    no_one_else_may_move(parent)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let private = parent.join(format!(".sigd{:x}", nanos ^ std::process::id()));
    // Fails if the name exists: nothing of anyone else's is ever used.
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let made = (|| {
        let inside = private.join("s");
        let listener = UnixListener::bind(&inside)?;
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(file.mode))?;
        if let Some(group) = file.group {
            nix::unistd::chown(&inside, None, Some(group))?;
        }
        std::fs::rename(&inside, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    made
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix {
            path, made: true, ..
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Remove `path` if it is a socket nobody answers on.
async fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use: another server answers on it", path.display()),
        ));
    }
    warn!(path = %path.display(), "removing a stale socket file");
    std::fs::remove_file(path)
}

/// What the end of a drain leaves requests whose waits it cut short to
/// answer in.
const ANSWER_TIME: Duration = Duration::from_millis(500);

/// Serve `app` on `listeners` until `shutdown` completes, then drain.
pub async fn run(
    listeners: Vec<Listener>,
    app: Arc<App>,
    limits: TransportLimits,
    shutdown: impl Future,
) {
    let graceful = Arc::new(GracefulShutdown::new());
    let connections = Connections::new(limits.max_connections);
    let mut accepting = JoinSet::new();
    for listener in listeners {
        let (app, connections, graceful) = (app.clone(), connections.clone(), graceful.clone());
        accepting.spawn(accept_loop(listener, app, connections, limits, graceful));
    }
    shutdown.await;
    info!("shutting down: no new connections");
    // Ending the accept loops drops the listeners (new clients are refused)
    // and their shares of `graceful`.
    accepting.shutdown().await;
    let Some(graceful) = Arc::into_inner(graceful) else {
        return; // unreachable: the accept loops held the only other shares
    };
    // Requests still waiting for an exit near the drain's end are answered
    // (their waits cut short) in time for the answer to get out.
    let deadline = tokio::time::Instant::now() + limits.drain;
    // Every connection closed, and every request its caller left before
    // the answer answered (each holds its connection's slot).
    let closed = async {
        graceful.shutdown().await;
        connections.all_given_up().await;
    };
    tokio::pin!(closed);
    tokio::select! {
        () = &mut closed => info!("all connections closed"),
        () = tokio::time::sleep_until(deadline - ANSWER_TIME.min(limits.drain / 2)) => {
            app.processes.cut_waits_short();
            tokio::select! {
                () = &mut closed => info!("all connections closed"),
                () = tokio::time::sleep_until(deadline) => {
                    // Requests still being answered end with the process:
                    // no answer, no audit event. Counted, so none is lost
                    // silently; every other connection is ended in the same
                    // pass, so none starts to be answered after the count.
                    let cut_off = connections.close();
                    warn!(
                        drain = ?limits.drain,
                        cut_off,
                        "drain limit reached; closing remaining connections \
                         (cut_off: requests still being decided, which end unanswered and unaudited, \
                         though they may have signalled already)"
                    );
                }
            }
        }
    }
    app.processes.escalations().cancel_all();
}

/// Accept connections on `listener` forever, each in a slot of
/// `connections` (which may end an idle one to make room).
async fn accept_loop(
    listener: Listener,
    app: Arc<App>,
    connections: Arc<Connections>,
    limits: TransportLimits,
    graceful: Arc<GracefulShutdown>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off, don't spin.
                error!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let holder = Holder::named(peer.credentials.map(|c| c.uid), None);
        // What making room logs is the newcomer's to answer for.
        let admitted = logs::charged_to(holder.clone(), async {
            let (slot, evicted) = connections.admit(holder.clone()).await;
            if let Some(state) = evicted {
                debug!(
                    ?state,
                    "every connection slot taken: the longest idle one ended"
                );
                app.metrics.connection_evicted(state);
            }
            slot
        });
        let slot = admitted.await;
        let open = app.metrics.connection();
        let served = app.clone();
        let peer = Arc::new(peer);
        let of = peer.clone();
        let slot = Arc::new(slot);
        let held = slot.clone();
        let charged = holder.clone();
        let service = service_fn(move |mut request: hyper::Request<_>| {
            let (app, peer, slot) = (served.clone(), of.clone(), held.clone());
            let holder = charged.clone();
            let activity = slot.activity.clone();
            request.extensions_mut().insert(activity.clone());
            // Answered to its end even if its connection ends first (its
            // caller hung up or reset it, and hyper drops this future), once
            // it is being answered: a decision is never cut short between
            // the signal it sent and its audit event. The request holds the
            // connection's slot until then, so requests still being
            // answered stay within the cap.
            let answering = ToTheEnd::new(activity.clone(), async move {
                let response = if slot.activity.advance(State::ReadingBody) {
                    // What it logs is its caller's (by uid; the request
                    // charges its decision to its token's principal), here
                    // too if it is answered to its end in a task of its own.
                    logs::charged_to(holder, http::handle(&app, &peer, request)).await
                } else {
                    // The connection was ended to make room.
                    Ok(http::HttpError::Busy.response().0)
                };
                drop(slot);
                response
            });
            async move {
                let response = answering.await;
                activity.advance(State::Awaiting);
                response
            }
        });
        // `half_close`: a client that shuts its side once its request is
        // sent (`nc -N`) is still answered; the EOF ends its requests, not
        // its answer.
        let connection = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_headers(limits.max_headers)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let id = slot.id();
        let task = tokio::spawn(logs::charged_to(holder, async move {
            if let Err(error) = connection.await {
                debug!(peer = %peer.transport, %error, "connection ended with an error");
            }
            drop((slot, open));
        }));
        connections.served_by(id, task.abort_handle());
    }
}

/// What answering a request comes to (`http::handle`'s).
type Answer = Result<hyper::Response<Full<Bytes>>, Infallible>;

/// A request's answer, run to its end once its request is being answered
/// ([`Activity::answering`]: the policy may have acted): dropped then (its
/// connection ended first), it finishes in a task of its own; dropped
/// before, it is cancelled, nothing having been decided. Boxed, so the rest
/// of it can move to that task; no task is spawned while it is awaited to
/// the end, the usual case.
struct ToTheEnd {
    future: Option<Pin<Box<dyn Future<Output = Answer> + Send>>>,
    activity: Arc<Activity>,
}

impl ToTheEnd {
    fn new(
        activity: Arc<Activity>,
        future: impl Future<Output = Answer> + Send + 'static,
    ) -> ToTheEnd {
        let future = Some(Box::pin(future) as Pin<Box<dyn Future<Output = Answer> + Send>>);
        ToTheEnd { future, activity }
    }
}

impl Future for ToTheEnd {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let Some(future) = self.future.as_mut() else {
            return Poll::Pending; // polled after its end: never by hyper
        };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl Drop for ToTheEnd {
    fn drop(&mut self) {
        if let Some(future) = self.future.take()
            && self.activity.answering()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(future);
        }
    }
}
