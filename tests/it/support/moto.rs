//! DynamoDB for the tests: one `moto_server` per test process on a free 127.0.0.1 port (or the
//! emulator named by `DYNAMODB_ENDPOINT`), and clients on it with dummy credentials. Every test
//! makes its own table, so tests share the server but never data.
//!
//! Only tests that run under the `services` feature come here (a bare `cargo test` reports them
//! ignored), so a machine without moto never tries to start it.

use std::io::{Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;
use osb_sacloud::store::dynamodb::DynamoStore;

const INSTALL_HINT: &str = "moto_server is not installed: install it with \
     `pip install 'moto[server]'` (or set DYNAMODB_ENDPOINT to a running DynamoDB emulator); \
     scripts/test.sh installs and starts it";

/// A running `moto_server`; dropping it stops the server.
pub struct Moto {
    endpoint: String,
    server: Child,
    /// Kills the server when this test process ends without running `Drop` (a shared instance
    /// lives in a static, and statics are never dropped): it waits for EOF on its stdin, which
    /// is the write end of a pipe only this process holds.
    watchdog: Child,
}

impl Moto {
    /// Starts `moto_server` on a free loopback port and waits until it answers. Panics (failing
    /// the test) when the binary is missing or the server does not come up.
    pub fn start() -> Moto {
        let mut last_failure = String::new();
        // A port found free can be taken before moto binds it; try a few.
        for _ in 0..3 {
            match Moto::try_start() {
                Ok(moto) => return moto,
                Err(why) => last_failure = why,
            }
        }
        panic!("moto_server did not start: {last_failure}");
    }

    fn try_start() -> Result<Moto, String> {
        let port = free_port();
        let mut log = tempfile::tempfile().map_err(|e| format!("temp file: {e}"))?;
        let log_for_child = log.try_clone().map_err(|e| format!("temp file: {e}"))?;
        let mut server = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("PYTHONPATH", python_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_for_child))
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
                _ => format!("spawn moto_server: {e}"),
            })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !moto_ready(port) {
            if let Ok(Some(status)) = server.try_wait() {
                let mut out = String::new();
                let _ = log.rewind();
                let _ = log.read_to_string(&mut out);
                return Err(format!("moto_server exited ({status}): {out}"));
            }
            if Instant::now() > deadline {
                let _ = server.kill();
                let _ = server.wait();
                return Err("moto_server not ready after 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let watchdog = Command::new("sh")
            .args(["-c", "read -r _; kill \"$1\" 2>/dev/null", "sh"])
            .arg(server.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                server,
                watchdog,
            }),
            Err(e) => {
                let _ = server.kill();
                let _ = server.wait();
                Err(format!("spawn watchdog: {e}"))
            }
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// PYTHONPATH that loads `scripts/moto/sitecustomize.py`, which makes moto handle one request at
/// a time: without it moto can let two racing conditional writes both succeed.
fn python_path() -> std::ffi::OsString {
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/moto");
    let inherited = std::env::var_os("PYTHONPATH").unwrap_or_default();
    let paths = std::iter::once(ours).chain(std::env::split_paths(&inherited));
    std::env::join_paths(paths).expect("PYTHONPATH")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Whether `GET /moto-api/` answers 200.
fn moto_ready(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// The endpoint every DynamoDB test uses: `DYNAMODB_ENDPOINT` if set, else this process's moto.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    static SHARED: OnceLock<Moto> = OnceLock::new();
    ENDPOINT.get_or_init(|| match std::env::var("DYNAMODB_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => SHARED.get_or_init(Moto::start).endpoint().to_owned(),
    })
}

/// A table name no other test (or earlier run against a long-lived emulator) uses.
pub fn table_name(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let test: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    format!("osb-{test}-{}-{nanos}-{n}", std::process::id())
}

/// The DynamoDB operations (`x-amz-target`, e.g. `PutItem`) a client sent, retries included.
#[derive(Debug, Default)]
pub struct CallLog(Mutex<Vec<String>>);

impl CallLog {
    /// Operations sent since the last call, in order; clears the log.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("call log"))
    }
}

#[derive(Debug)]
struct Recorder(Arc<CallLog>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "test-call-log"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.0.0.lock().expect("call log").push(op);
        Ok(())
    }
}

/// A client on the test endpoint with dummy credentials, recording every request it sends.
pub fn client() -> (aws_sdk_dynamodb::Client, Arc<CallLog>) {
    let log = Arc::new(CallLog::default());
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint())
        .interceptor(Recorder(log.clone()))
        .build();
    (aws_sdk_dynamodb::Client::from_conf(config), log)
}

/// A store on a new, empty table, and the log of the requests its client sends.
pub async fn store(test: &str) -> (DynamoStore, Arc<CallLog>) {
    let (client, log) = client();
    let store = DynamoStore::new(client, table_name(test));
    store.create_table().await.expect("create test table");
    log.take();
    (store, log)
}
