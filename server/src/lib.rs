//! tickwire server framework.

pub mod http;
pub mod tls;
