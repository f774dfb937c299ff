//! A TCP forwarder from the test machine's loopback into a lab machine: a listener on
//! `127.0.0.1` (an ephemeral port) in this process's own network namespace, and for each
//! connection accepted there, a thread that moves into the machine's network namespace
//! (that thread only, as [`crate::Lab::tcp_listener`] does), connects to `127.0.0.1:PORT`
//! there, and pipes bytes both ways until either side closes. It lets a test reach a
//! service that listens on the machine's own loopback (a WebDriver server, whose browser
//! must run inside the lab to reach the nodes) without giving the lab any route out:
//! the only sockets are the test machine's loopback and the machine's.
//!
//! It owns its listener and its threads: [`Forward`]'s `Drop` stops accepting and
//! closes the connections that are still open.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::LabError;

/// A running forwarder (see the module's documentation); ends when dropped.
pub struct Forward {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Every connection's two ends (to close them at the end).
    open: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Forward {
    /// Listens on the test machine's loopback and forwards each connection to
    /// `127.0.0.1:port` inside the network namespace opened as `namespace`.
    pub(crate) fn start(namespace: File, port: u16) -> Result<Forward, LabError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| LabError::io("binding the forwarder's listener", e))?;
        let address =
            listener.local_addr().map_err(|e| LabError::io("the forwarder's address", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, open) = (stop.clone(), open.clone());
            thread::Builder::new()
                .name(format!("forward-{port}"))
                .spawn(move || accept(listener, namespace, port, &stop, &open))
                .map_err(|e| LabError::io("starting the forwarder", e))?
        };
        Ok(Forward { address, stop, open, acceptor: Some(acceptor) })
    }

    /// The port on `127.0.0.1` (the test machine's loopback) that leads into the machine.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `127.0.0.1:PORT`, see [`Forward::port`].
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which sees `stop` and ends.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.open.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept(
    listener: TcpListener,
    namespace: File,
    port: u16,
    stop: &AtomicBool,
    open: &Arc<Mutex<Vec<TcpStream>>>,
) {
    for outside in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(outside) = outside else { continue };
        let Ok(namespace) = namespace.try_clone() else { continue };
        let open = open.clone();
        let _ = thread::Builder::new()
            .name(format!("forward-{port}-conn"))
            .spawn(move || connection(outside, namespace, port, &open));
    }
}

/// One connection: into the namespace, connect there, then pipe both ways (the other
/// direction on a second thread); each direction's end is passed on as a half-close.
fn connection(outside: TcpStream, namespace: File, port: u16, open: &Mutex<Vec<TcpStream>>) {
    let inside = rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&namespace),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(std::io::Error::from)
    .and_then(|()| TcpStream::connect((Ipv4Addr::LOCALHOST, port)));
    drop(namespace);
    let Ok(inside) = inside else {
        let _ = outside.shutdown(Shutdown::Both);
        return;
    };
    let clones = (outside.try_clone(), inside.try_clone());
    let (Ok(outside_back), Ok(inside_back)) = clones else { return };
    {
        let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|s| s.peer_addr().is_ok());
        if let (Ok(a), Ok(b)) = (outside.try_clone(), inside.try_clone()) {
            open.extend([a, b]);
        }
    }
    let back = thread::spawn(move || pipe(inside_back, outside_back));
    pipe(outside, inside);
    let _ = back.join();
}

/// Copies `from` to `to` until `from` ends, then half-closes `to`.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
