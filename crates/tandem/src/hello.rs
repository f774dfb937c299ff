//! `tandem hello --listen ADDR` (hidden): a tiny HTTP server that answers every request
//! with the name of the node it runs on (`TANDEM_NODE`, which the daemon gives the
//! processes it starts) and, with `--file F`, the contents of F. The demo and the lab
//! tests run it as a group's service, so that a client can see which node serves it and
//! that data written on the shared file system before a failover is still there.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use labcluster::probe::monotonic_ms;

#[derive(clap::Args)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// A file whose contents follow the node's name in every answer.
    #[arg(long)]
    file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)?;
    let node = std::env::var("TANDEM_NODE").unwrap_or_else(|_| "unknown".to_string());
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let mut body = format!("{node}\n");
        if let Some(file) = &args.file {
            body.push_str(&std::fs::read_to_string(file).unwrap_or_default());
        }
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
    }
    Ok(ExitCode::SUCCESS)
}

/// `tandem probe --target ADDR:PORT` (hidden): the client of [`run`]. Every
/// `--interval-ms` it connects, asks `GET /` and prints one line per attempt:
/// `<CLOCK_MONOTONIC ms> ok <node>` or `<ms> fail <why>` — how the demo, the lab tests
/// and the benchmarks see a failover from the client's side.
#[derive(clap::Args)]
pub struct ProbeArgs {
    #[arg(long)]
    target: SocketAddr,
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Each attempt's limit (connect plus answer).
    #[arg(long, default_value_t = 200)]
    timeout_ms: u64,
    /// Attempts to make; 0: until killed.
    #[arg(long, default_value_t = 0)]
    count: u64,
}

/// One GET: the first line of the body, or why not.
pub fn get(target: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut stream =
        std::net::TcpStream::connect_timeout(&target, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    let body = text.split("\r\n\r\n").nth(1).ok_or("no HTTP answer")?;
    Ok(body.lines().next().unwrap_or_default().to_string())
}

pub fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let interval = Duration::from_millis(args.interval_ms.max(1));
    // Attempts start every interval whatever the earlier ones do (a connect to an
    // address that just moved may hang until its timeout), each printing its line when it
    // ends, stamped with its end: the first good answer after an outage is seen within
    // one interval of the service answering again.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let printer = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for line in rx {
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return;
            }
        }
    });
    let target = args.target;
    let mut made = 0;
    let mut attempts = Vec::new();
    let mut next = std::time::Instant::now();
    loop {
        let tx = tx.clone();
        attempts.push(std::thread::spawn(move || {
            let line = match get(target, timeout) {
                Ok(node) => format!("{} ok {node}", monotonic_ms()),
                Err(why) => format!("{} fail {why}", monotonic_ms()),
            };
            let _ = tx.send(line);
        }));
        attempts.retain(|a| !a.is_finished());
        made += 1;
        if args.count != 0 && made >= args.count {
            break;
        }
        next += interval;
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    for attempt in attempts {
        let _ = attempt.join();
    }
    drop(tx);
    let _ = printer.join();
    Ok(ExitCode::SUCCESS)
}
