//! `testbed-probe`: a tiny TCP reachability helper run inside lab hosts (the lab machines
//! have no `ping` or `nc`). `listen PORT` accepts on every address of its namespace and
//! greets each connection; `connect ADDRESS:PORT TIMEOUT_MS` exits 0 only when it got the
//! greeting within the timeout. It owns nothing else and must not reach any address the
//! caller did not give it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What the listener says to every connection.
const GREETING: &[u8] = b"tandem-probe\n";

/// Most time one `connect` may take, whatever is asked.
const CONNECT_TIMEOUT_MS_MAX: u64 = 60_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["listen", port] => listen(port),
        ["connect", address, timeout_ms] => connect(address, timeout_ms),
        _ => Err("usage: testbed-probe listen PORT | connect ADDRESS:PORT TIMEOUT_MS".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("testbed-probe: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Accepts connections on `0.0.0.0:port` forever, greeting each.
fn listen(port: &str) -> Result<(), String> {
    let port: u16 = port.parse().map_err(|e| format!("port {port}: {e}"))?;
    let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("bind: {e}"))?;
    println!("listening on port {port}");
    for mut stream in listener.incoming().flatten() {
        let _ = stream.write_all(GREETING);
    }
    Ok(())
}

/// Connects to `address` and reads the greeting, all within `timeout_ms`.
fn connect(address: &str, timeout_ms: &str) -> Result<(), String> {
    let address: SocketAddr = address.parse().map_err(|e| format!("address {address}: {e}"))?;
    let timeout_ms: u64 = timeout_ms.parse().map_err(|e| format!("timeout {timeout_ms}: {e}"))?;
    let timeout = Duration::from_millis(timeout_ms.clamp(1, CONNECT_TIMEOUT_MS_MAX));
    let started = Instant::now();
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("connect: {e}"))?;
    let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left)).map_err(|e| format!("read timeout: {e}"))?;
    let mut greeting = vec![0u8; GREETING.len()];
    stream.read_exact(&mut greeting).map_err(|e| format!("read: {e}"))?;
    if greeting == GREETING {
        Ok(())
    } else {
        Err(format!("unexpected greeting {:?}", String::from_utf8_lossy(&greeting)))
    }
}
