//! A ClickHouse server of a test's own: Debian's clickhouse-server with its
//! own configuration on free loopback ports and a temporary directory,
//! optionally inside a network namespace; killed when dropped (also when
//! the test fails).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SERVER: &str = "/usr/sbin/clickhouse-server";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server of the test's own; killed when dropped.
pub struct Server {
    dir: tempfile::TempDir,
    http: u16,
    tcp: u16,
    /// The native ports of a cluster's shards (`remote_servers`, cluster
    /// `xb`), this one among them.
    shards: Vec<u16>,
    /// The network namespace it runs in.
    netns: Option<String>,
    child: Option<Child>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_in(None)
    }

    /// A server in network namespace `netns` (its loopback), or in this one.
    pub fn start_in(netns: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (http, tcp) = (free_port(), free_port());
        let netns = netns.map(str::to_owned);
        let mut s = Server { dir, http, tcp, shards: Vec::new(), netns, child: None };
        s.run();
        s
    }

    /// Two servers, each a shard of cluster `xb`.
    pub fn start_cluster() -> (Self, Self) {
        let (tcp1, tcp2) = (free_port(), free_port());
        let server = |tcp| {
            let dir = tempfile::tempdir().unwrap();
            Server {
                dir,
                http: free_port(),
                tcp,
                shards: vec![tcp1, tcp2],
                netns: None,
                child: None,
            }
        };
        let (mut a, mut b) = (server(tcp1), server(tcp2));
        a.run();
        b.run();
        (a, b)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// Starts (or restarts) the process on the same data and ports.
    pub fn run(&mut self) {
        let d = self.dir.path();
        for sub in ["data", "tmp", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/error.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <remote_servers><xb>{shards}</xb></remote_servers>
</yandex>
"#,
            d = d.display(),
            http = self.http,
            tcp = self.tcp,
            shards = self
                .shards
                .iter()
                .map(|p| format!(
                    "<shard><replica><host>127.0.0.1</host><port>{p}</port></replica></shard>"
                ))
                .collect::<String>()
        );
        std::fs::write(d.join("config.xml"), config).unwrap();
        std::fs::write(
            d.join("users.xml"),
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#,
        )
        .unwrap();
        let child = self
            .command(SERVER)
            .arg(format!("--config-file={}", d.join("config.xml").display()))
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server");
        self.child = Some(child);
        let start = Instant::now();
        while self.query("SELECT 1").is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "the server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `program`, in the server's namespace.
    fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }

    /// A query's answer (TSV), or `None` if the server does not answer.
    pub fn query(&self, sql: &str) -> Option<String> {
        let out = self
            .command("curl")
            .args(["-sf", "--max-time", "10", "--data-binary", sql, &format!("{}/", self.url())])
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
