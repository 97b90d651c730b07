//! Helpers for the Lambda tests: a private `moto_server` (Secrets Manager) on a free loopback
//! port, and a broker served on a real socket.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use osb_sacloud::secrets;

/// A `moto_server` child process on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Start moto and wait until it answers. Fails (never skips) when moto is missing:
    /// `scripts/test.sh` installs it.
    pub async fn start() -> Moto {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server ({e}); install it with `pip install 'moto[server]'` (scripts/test.sh does)"));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = crate::support::plain_http::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("{}/moto-api/", moto.endpoint))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "moto_server did not answer on {} within 10 s",
            moto.endpoint
        );
    }

    /// Store `value` as a new secret named `name`; returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        let client = secrets::client(Some(&self.endpoint)).await;
        let out = client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("moto creates the secret");
        out.arn().expect("the new secret has an ARN").to_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Serve `router` on a loopback port until the returned handle is aborted or the runtime ends.
pub async fn serve(router: axum::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (addr, task)
}
