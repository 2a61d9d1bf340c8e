//! A bench's own executable run again as a helper process (a bare baseline server, say): the
//! parent starts it with an environment variable that tells it what to be, and reads the port
//! it announces on its first line of output.

use std::ffi::OsStr;

use tokio::io::AsyncBufReadExt;

/// Why the helper process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("no stdout")]
    NoStdout,
    #[error(transparent)]
    Port(#[from] std::num::ParseIntError),
}

/// Starts this executable again with `envs` set, stdin and stdout piped (killed when the child
/// is dropped), and waits for the port it announces with [`announce_port`].
pub async fn spawn_self<K, V>(envs: &[(K, V)]) -> Result<(tokio::process::Child, u16), SpawnError>
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or(SpawnError::NoStdout)?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await?;
    let port: u16 = line.trim().parse()?;
    Ok((child, port))
}

/// In the helper process: a listener on 127.0.0.1, port 0, its port printed for the parent.
pub async fn announce_port() -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    std::io::Write::flush(&mut std::io::stdout())?;
    Ok(listener)
}
