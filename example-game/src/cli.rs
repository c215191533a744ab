//! Helpers shared by the `arena-server` and `arena-bots` command lines (only
//! with the `server` feature).

use std::time::Duration;

/// Parses a duration such as `500ms`, `30s`, `2.5s`, `10m` or `30` (seconds),
/// for clap's `value_parser`.
///
/// ```
/// use std::time::Duration;
/// use arena::cli::parse_duration;
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert!(parse_duration("5h").is_err());
/// ```
///
/// # Errors
/// A message naming the input when it is not a number and a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit (ms, s, m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "" | "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses a view radius in world units (`arena-server --view-radius`): a
/// finite number above 0, for clap's `value_parser`.
///
/// ```
/// use arena::cli::parse_view_radius;
/// assert_eq!(parse_view_radius("125"), Ok(125.0));
/// assert!(parse_view_radius("0").is_err());
/// assert!(parse_view_radius("inf").is_err());
/// ```
///
/// # Errors
/// A message naming the input when it is not a positive finite number.
pub fn parse_view_radius(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(_) => Err(format!("{s:?}: expected a radius above 0 (world units)")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

/// The node lifecycle flags of `arena-server` (see
/// `tickwire_server::lifecycle`): how long a draining node (SIGTERM) lets its
/// rooms run, and how often the health hook fires.
///
/// ```
/// use clap::Parser;
/// use arena::cli::LifecycleArgs;
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     lifecycle: LifecycleArgs,
/// }
/// let cli = Cli::parse_from(["arena-server", "--drain-grace", "90s"]);
/// let config = cli.lifecycle.apply(tickwire_server::ServerConfig::default());
/// assert_eq!(config.lifecycle.drain_grace, std::time::Duration::from_secs(90));
/// ```
#[derive(clap::Args, Debug, Clone)]
pub struct LifecycleArgs {
    /// On SIGTERM the node drains: it refuses new players (Reject
    /// ShuttingDown), and its rooms run on for at most this long before
    /// their players are closed with 1001 and a reason; then it exits.
    /// A fleet manager's kill deadline must be longer than this plus 5 s.
    #[arg(long, value_parser = parse_duration, default_value = "25s")]
    pub drain_grace: Duration,

    /// How often the lifecycle health hook fires while the node is ready or
    /// draining (where an Agones `Health()` ping would go).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub health_interval: Duration,
}

impl LifecycleArgs {
    /// `config` with these values set.
    #[must_use]
    pub fn apply(&self, config: tickwire_server::ServerConfig) -> tickwire_server::ServerConfig {
        config
            .with_drain_grace(self.drain_grace)
            .with_health_interval(self.health_interval)
    }
}

/// The room directory flags of `arena-server` (see
/// `tickwire_server::directory`): where the node registers itself and its
/// rooms. Without `--redis-url` the directory is in memory (one node, the
/// default; `cargo xtask play` needs nothing else).
///
/// ```
/// use clap::Parser;
/// use arena::cli::FleetArgs;
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     fleet: FleetArgs,
/// }
/// let cli = Cli::parse_from(["arena-server", "--node-id", "eu-1", "--redis-url", "redis://10.0.0.5/"]);
/// let config = cli.fleet.apply(tickwire_server::ServerConfig::default());
/// assert_eq!(config.fleet.node_id, "eu-1");
/// assert_eq!(cli.fleet.redis_url.as_deref(), Some("redis://10.0.0.5/"));
/// ```
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// Share a room directory in this Redis with the other nodes of the
    /// fleet, e.g. `redis://127.0.0.1:6379/0`. Without it the directory is
    /// in this process's memory.
    #[arg(long)]
    pub redis_url: Option<String>,

    /// The fleet's key prefix in Redis (several fleets can share one Redis).
    #[arg(long, default_value = "tickwire")]
    pub redis_prefix: String,

    /// This node's id in the directory, unique in the fleet (a pod or host
    /// name).
    #[arg(long, default_value = "node")]
    pub node_id: String,

    /// The WebSocket URL clients reach this node at (behind a proxy, the
    /// proxy's), e.g. `wss://eu-1.example.com/ws`. Default: from --addr.
    #[arg(long)]
    pub public_wss_url: Option<String>,

    /// The QUIC URL clients reach this node at. Default: from --quic-addr.
    #[arg(long)]
    pub public_quic_url: Option<String>,

    /// The game mode the node's rooms are registered with.
    #[arg(long, default_value = "")]
    pub mode: String,

    /// How often the node refreshes its directory entries.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub heartbeat_interval: Duration,

    /// How long the entries live without a refresh: a dead node leaves the
    /// directory within this.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub directory_ttl: Duration,

    /// The fleet's shared secret (at least 16 bytes), which signs seat
    /// tokens: with it the node answers `POST /matchmake` and checks seat
    /// tokens. Prefer the environment variable `TICKWIRE_FLEET_SECRET`
    /// (a command line is visible to other users); this flag wins over it.
    /// Without either, matchmaking is off. Never printed.
    #[arg(long, value_name = "SECRET")]
    pub fleet_secret: Option<tickwire_server::FleetSecret>,

    /// Admit only players with a seat token from `POST /matchmake` (needs a
    /// fleet secret).
    #[arg(long)]
    pub require_seat_token: bool,

    /// How long a seat token is valid after matchmaking.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub seat_ttl: Duration,

    /// The admin token (at least 16 bytes) that opens the fleet console at
    /// `/admin/` and its JSON API (docs/CONSOLE.md). Prefer the environment
    /// variable `TICKWIRE_ADMIN_TOKEN` (a command line is visible to other
    /// users); this flag wins over it. Without either, the console is off.
    /// Never printed.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<tickwire_server::AdminToken>,
}

impl FleetArgs {
    /// `config` with these values set (the directory itself is made by the
    /// binary, from `redis_url`).
    #[must_use]
    pub fn apply(&self, config: tickwire_server::ServerConfig) -> tickwire_server::ServerConfig {
        let mut fleet = tickwire_server::FleetConfig::default()
            .with_node_id(self.node_id.clone())
            .with_mode(self.mode.clone())
            .with_heartbeat(self.heartbeat_interval, self.directory_ttl);
        fleet.public_wss_url.clone_from(&self.public_wss_url);
        fleet.public_quic_url.clone_from(&self.public_quic_url);
        fleet.secret.clone_from(&self.fleet_secret);
        fleet.require_seat_token = self.require_seat_token;
        fleet.seat_ttl = self.seat_ttl;
        config
            .with_fleet(fleet)
            .with_admin_token(self.admin_token.clone())
    }

    /// [`FleetArgs::admin_token`], else the environment variable
    /// `TICKWIRE_ADMIN_TOKEN` (when set and not empty), parsed.
    ///
    /// # Errors
    /// When the variable holds a token shorter than 16 bytes (or not
    /// visible ASCII).
    pub fn admin_token_or_env(&mut self) -> Result<(), tickwire_server::console::AdminTokenError> {
        if self.admin_token.is_none()
            && let Some(s) = std::env::var(ADMIN_TOKEN_ENV)
                .ok()
                .filter(|s| !s.is_empty())
        {
            self.admin_token = Some(s.parse()?);
        }
        Ok(())
    }

    /// [`FleetArgs::fleet_secret`], else the environment variable
    /// `TICKWIRE_FLEET_SECRET` (when set and not empty), parsed.
    ///
    /// # Errors
    /// When the variable holds a secret shorter than 16 bytes.
    pub fn secret_or_env(&mut self) -> Result<(), tickwire_server::matchmaking::SeatTokenError> {
        if self.fleet_secret.is_none()
            && let Some(s) = std::env::var_os(FLEET_SECRET_ENV).filter(|s| !s.is_empty())
        {
            let secret = tickwire_server::FleetSecret::new(s.into_encoded_bytes())?;
            self.fleet_secret = Some(secret);
        }
        Ok(())
    }
}

/// The environment variable `arena-server` reads the admin token from.
pub const ADMIN_TOKEN_ENV: &str = "TICKWIRE_ADMIN_TOKEN";

/// The environment variable `arena-server` reads the fleet secret from.
pub const FLEET_SECRET_ENV: &str = "TICKWIRE_FLEET_SECRET";

/// The prefix of [`stats_line`]'s lines.
pub const STATS_PREFIX: &str = "STATS ";

/// One machine-readable line for a [`ServerStats`] window, printed by
/// `arena-server --stats-interval`: `STATS ` and a JSON object with
///
/// | key | meaning |
/// |---|---|
/// | `t_s` | seconds since the server started, at the end of the window |
/// | `elapsed_s` | the window's length |
/// | `ticks`, `tick_mean_us`, `tick_p50_us`, `tick_p99_us`, `tick_max_us` | room tick durations |
/// | `overruns` | ticks that started more than a period late |
/// | `over_budget` | ticks that took longer than a period |
/// | `clients` | sessions connected at the end of the window |
/// | `snapshots`, `full_snapshots`, `snapshot_bytes` | snapshots queued in the window |
/// | `tick_hist` | the tick histogram (µs), hdrhistogram V2 serialized, base64 (standard alphabet), so windows can be merged exactly |
///
/// [`ServerStats`]: tickwire_server::ServerStats
#[must_use]
pub fn stats_line(stats: &tickwire_server::ServerStats, since_start: Duration) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2Serializer};
    let h = &stats.tick_us;
    let mut raw = Vec::new();
    let hist = match V2Serializer::new().serialize(h, &mut raw) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&raw),
        Err(_) => String::new(),
    };
    let line = serde_json::json!({
        "t_s": since_start.as_secs_f64(),
        "elapsed_s": stats.elapsed.as_secs_f64(),
        "ticks": stats.ticks(),
        "tick_mean_us": if h.is_empty() { 0.0 } else { h.mean() },
        "tick_p50_us": h.value_at_quantile(0.5),
        "tick_p99_us": h.value_at_quantile(0.99),
        "tick_max_us": h.max(),
        "overruns": stats.overruns,
        "over_budget": stats.ticks_over_budget,
        "clients": stats.connected_clients,
        "snapshots": stats.sent.snapshots,
        "full_snapshots": stats.sent.full_snapshots,
        "snapshot_bytes": stats.sent.bytes,
        "tick_hist": hist,
    });
    format!("{STATS_PREFIX}{line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn lifecycle_defaults_match_the_server_config() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            lifecycle: LifecycleArgs,
        }
        let cli = Cli::parse_from(["arena-server"]);
        let default = tickwire_server::ServerConfig::default();
        assert_eq!(cli.lifecycle.drain_grace, default.lifecycle.drain_grace);
        assert_eq!(
            cli.lifecycle.health_interval,
            default.lifecycle.health_interval
        );
    }

    #[test]
    fn fleet_defaults_match_the_server_config() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            fleet: FleetArgs,
        }
        let cli = Cli::parse_from(["arena-server"]);
        assert_eq!(cli.fleet.redis_url, None);
        let config = cli.fleet.apply(tickwire_server::ServerConfig::default());
        assert_eq!(config.fleet, tickwire_server::FleetConfig::default());
    }

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 2 "), Ok(Duration::from_secs(2)));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("3 parsecs").is_err());
    }

    #[test]
    fn a_stats_line_is_json_with_a_mergeable_histogram() {
        let mut stats = tickwire_server::ServerStats::default();
        for us in [900, 1_100, 1_000, 25_000] {
            stats.tick_us.record(us).unwrap();
        }
        stats.overruns = 1;
        stats.connected_clients = 7;
        stats.sent.snapshots = 70;
        stats.sent.bytes = 7_000;
        stats.elapsed = Duration::from_secs(1);
        let line = stats_line(&stats, Duration::from_secs(12));
        let json = line.strip_prefix(STATS_PREFIX).expect("prefix");
        assert!(!json.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["ticks"], 4);
        assert_eq!(v["clients"], 7);
        assert_eq!(v["snapshots"], 70);
        assert_eq!(v["snapshot_bytes"], 7_000);
        assert_eq!(v["overruns"], 1);
        assert_eq!(v["t_s"], 12.0);
        let max = v["tick_max_us"].as_u64().unwrap();
        assert!(max.abs_diff(25_000) <= 25, "{max}");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["tick_hist"].as_str().unwrap())
            .unwrap();
        let h: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut raw.as_slice())
            .unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h.max(), stats.tick_us.max());
    }
}
