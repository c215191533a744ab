//! Connection caps shared by every transport: in total and per IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::metrics as m;

/// Counts connections in total and per IP address.
#[derive(Debug, Default)]
pub(crate) struct ConnectionLimits {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_total: usize,
    max_per_ip: usize,
}

/// Releases a connection slot when dropped.
pub(crate) struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
        m::connections(-1.0);
    }
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip: Mutex::new(HashMap::new()),
            max_total,
            max_per_ip,
        })
    }

    /// Takes a slot for `ip`, or says which cap refused it.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = map.values().sum();
        if total >= self.max_total {
            return Err("total connection cap");
        }
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err("per-IP connection cap");
        }
        *n += 1;
        m::connections(1.0);
        Ok(Slot {
            limits: Arc::clone(self),
            ip,
        })
    }
}
