//! A TCP proxy in front of PostgreSQL that controls when cancel requests arrive: it passes every connection
//! through untouched, except those that open with a CancelRequest packet, which it holds until the test lets
//! them go ([`Mode::Hold`]) or delays by a random time ([`Mode::Delay`]). A late cancel is exactly what made one
//! caller's departure stop the next caller's statement (issue #10); the proxy makes "late" happen on demand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify};

/// Length 16, then the cancel request code 80877102 (PostgreSQL protocol, "CancelRequest").
const CANCEL_REQUEST: [u8; 8] = [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e];

#[derive(Clone, Copy)]
pub enum Mode {
    /// Keep every cancel request until [`CancelProxy::release`].
    Hold,
    /// Forward each cancel request after a random delay of up to this long.
    Delay(Duration),
}

/// A cancel request waiting to be forwarded: the packet and the connection of whoever sent it (it waits for the
/// server to close the connection, as libpq and tokio-postgres do).
struct Held {
    packet: [u8; 16],
    sender: TcpStream,
}

pub struct CancelProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    held: Arc<Mutex<Vec<Held>>>,
    arrived: Arc<Notify>,
    /// Cancel requests seen so far.
    pub cancels: Arc<AtomicUsize>,
}

impl CancelProxy {
    pub async fn start(upstream: SocketAddr, mode: Mode) -> CancelProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = CancelProxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            held: Arc::default(),
            arrived: Arc::default(),
            cancels: Arc::default(),
        };
        let (held, arrived, cancels) = (proxy.held.clone(), proxy.arrived.clone(), proxy.cancels.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (held, arrived, cancels) = (held.clone(), arrived.clone(), cancels.clone());
                tokio::spawn(async move {
                    let _ = relay(client, upstream, mode, held, arrived, cancels).await;
                });
            }
        });
        proxy
    }

    /// Waits until `n` cancel requests are held.
    pub async fn wait_held(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            if self.held.lock().await.len() >= n {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the server never sent the cancel request");
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// Forwards every held cancel request and waits until PostgreSQL has taken each.
    pub async fn release(&self) {
        let held = std::mem::take(&mut *self.held.lock().await);
        for h in held {
            forward_cancel(self.upstream, h).await;
        }
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: Mode,
    held: Arc<Mutex<Vec<Held>>>,
    arrived: Arc<Notify>,
    cancels: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut first = [0u8; 8];
    client.read_exact(&mut first).await?;
    if first == CANCEL_REQUEST {
        let mut packet = [0u8; 16];
        packet[..8].copy_from_slice(&first);
        client.read_exact(&mut packet[8..]).await?;
        cancels.fetch_add(1, Ordering::SeqCst);
        let request = Held { packet, sender: client };
        match mode {
            Mode::Hold => {
                held.lock().await.push(request);
                arrived.notify_waiters();
            }
            Mode::Delay(max) => {
                let wait = max.mul_f64(rand::random::<f64>());
                tokio::time::sleep(wait).await;
                forward_cancel(upstream, request).await;
            }
        }
        return Ok(());
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    client.set_nodelay(true)?;
    server.write_all(&first).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// Sends one cancel request on to PostgreSQL, waits for it to close the connection (it has then signalled the
/// backend), and closes the sender's connection the same way.
async fn forward_cancel(upstream: SocketAddr, mut request: Held) {
    if let Ok(mut server) = TcpStream::connect(upstream).await {
        let _ = server.write_all(&request.packet).await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), server.read_to_end(&mut rest)).await;
    }
    let _ = request.sender.shutdown().await;
}
