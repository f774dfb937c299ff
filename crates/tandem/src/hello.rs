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
