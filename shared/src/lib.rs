//! tickwire wire protocol (sans-IO).

pub mod conditioner;
